// The operator exactly as a user runs it, for end-to-end tests, fault tests and the bench:
// `node operator/src/main.ts <args>` as a process of its own, its JSON log (stderr) kept in a
// file and parsed on demand, SIGTERM or SIGKILL on demand, optionally restarted after an exit the
// test did not ask for (like a pod's restartPolicy: Always), optionally serving /readyz and
// /metrics on free ports. Its temp folder is watched like the control plane's, so a crashed test
// never leaves it running.
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, createWriteStream, statSync, type WriteStream } from "node:fs";
import { copyFile, mkdir, open, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { freePort, loopback } from "./net.ts";
import { ownedTempDir } from "./owned-dir.ts";

/** The operator's entry point, its TypeScript source (Node strips the types as it loads it). */
export const operatorEntry = join(import.meta.dirname, "..", "src", "main.ts");

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() of the exit. */
  at: number;
  /** Did the test cause it (kill/stop), or did the operator exit on its own? */
  requested: boolean;
}

export interface OperatorProcessOptions {
  /** Names the temp folder and kept logs. */
  name?: string;
  /** The operator's flags. */
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Flags for node itself, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** The entry point (default: the TypeScript source). */
  script?: string;
  /** Where its stderr goes (default: operator.log in its temp folder). */
  logFile?: string;
  /** Start again this long after an exit the test did not ask for; undefined: stay down. */
  restartDelayMs?: number;
  /** Serve /healthz, /readyz and /metrics on free loopback ports. */
  http?: boolean;
}

export class OperatorProcess {
  readonly name: string;
  readonly dir: string;
  readonly logFile: string;
  readonly exits: Exit[] = [];
  /** performance.now() of every start. */
  readonly starts: number[] = [];
  /** Log lines at warn level or above, and anything that is not JSON (a crash trace). */
  readonly warnings: string[] = [];
  readonly healthUrl: string | undefined;
  readonly metricsUrl: string | undefined;
  /** When the latest start was spawned (ms since the epoch). */
  startedAt = 0;
  private readonly options: OperatorProcessOptions;
  private readonly args: string[];
  private child: ChildProcess | undefined;
  private exited: Promise<Exit> = Promise.resolve({ code: 0, signal: null, at: 0, requested: true });
  private requested = false;
  private stopped = false;
  private log: WriteStream | undefined;
  /** The current start's log: where it is read up to, and the lines parsed so far. */
  private parsed: { upTo: number; lines: Record<string, unknown>[]; partial: string } = {
    upTo: 0,
    lines: [],
    partial: "",
  };

  private constructor(
    dir: string,
    options: OperatorProcessOptions,
    ports: { health: number; metrics: number } | undefined,
  ) {
    this.dir = dir;
    this.options = options;
    this.name = options.name ?? "operator";
    this.logFile = options.logFile ?? join(dir, "operator.log");
    this.args = [...options.args];
    if (ports) {
      this.healthUrl = `http://${loopback}:${ports.health}`;
      this.metricsUrl = `http://${loopback}:${ports.metrics}/metrics`;
      this.args.push(
        "--health-addr",
        `${loopback}:${ports.health}`,
        "--metrics-addr",
        `${loopback}:${ports.metrics}`,
      );
    }
  }

  /** Spawns the operator (it runs in the background: wait for what the test needs). */
  static async start(options: OperatorProcessOptions): Promise<OperatorProcess> {
    const dir = await ownedTempDir(`devicepass-${options.name ?? "operator"}-`);
    const ports = options.http ? { health: await freePort(), metrics: await freePort() } : undefined;
    const operator = new OperatorProcess(dir, options, ports);
    await operator.spawn();
    return operator;
  }

  /** Spawns it and waits for its "operator running" log line; stops it if that does not come. */
  static async startRunning(options: OperatorProcessOptions, timeoutMs = 60_000): Promise<OperatorProcess> {
    const operator = await OperatorProcess.start(options);
    try {
      await operator.waitForMessage("operator running", timeoutMs);
    } catch (error) {
      await operator.dispose();
      throw error;
    }
    return operator;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private async spawn(): Promise<void> {
    this.requested = false;
    appendFileSync(this.logFile, `--- start ${this.starts.length + 1} of ${this.name}\n`);
    this.parsed = { upTo: statSync(this.logFile).size, lines: [], partial: "" };
    const log = (this.log = createWriteStream(this.logFile, { flags: "a" }));
    // process.execPath: the Node 24 that runs the tests, so the pid is the operator's own.
    const child = spawn(
      process.execPath,
      [...(this.options.nodeArgs ?? []), this.options.script ?? operatorEntry, ...this.args],
      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...this.options.env } },
    );
    let pending = "";
    child.stderr.on("data", (chunk: Buffer) => {
      log.write(chunk);
      const lines = (pending + chunk.toString("utf8")).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        // pino levels: 40 warn, 50 error, 60 fatal.
        const level = /^\{.*"level":(\d+)/.exec(line)?.[1];
        if (line.trim() && (level === undefined || Number(level) >= 40)) this.warnings.push(line);
      }
    });
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        const exit = { code, signal, at: performance.now(), requested: this.requested };
        this.exits.push(exit);
        resolve(exit);
        const restartDelayMs = this.options.restartDelayMs;
        if (!this.requested && !this.stopped && restartDelayMs !== undefined) {
          setTimeout(() => {
            if (!this.stopped && !this.running) void this.spawn();
          }, restartDelayMs);
        }
      }),
    );
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    this.starts.push(performance.now());
    this.startedAt = Date.now();
    await writeFile(join(this.dir, "pids", "operator"), String(child.pid));
  }

  /** Throws with the log's tail if the process is not running. */
  assertRunning(): Promise<void> {
    if (this.running) return Promise.resolve();
    return this.tail().then((tail) => {
      throw new Error(`${this.name} exited:\n${tail}`);
    });
  }

  /** Sends `signal` and waits for the exit; the process stays down until restart(). */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<Exit> {
    if (!this.running) throw new Error(`${this.name} is not running`);
    this.requested = true;
    this.child!.kill(signal);
    return this.exited;
  }

  /** Sends `signal` and returns (a heap snapshot signal, say). */
  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  /** Starts the process again after kill(). */
  async restart(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is running`);
    await this.spawn();
  }

  /** The whole log, every start of the process. */
  logText(): Promise<string> {
    return readFile(this.logFile, "utf8").catch(() => "");
  }

  async tail(lines = 30): Promise<string> {
    return (await this.logText()).split("\n").slice(-lines).join("\n");
  }

  /** JSON log lines of the current (last) start; reads only what was appended since the last call. */
  async currentLines(): Promise<Record<string, unknown>[]> {
    const file = await open(this.logFile, "r");
    try {
      const { size } = await file.stat();
      if (size > this.parsed.upTo) {
        const buffer = Buffer.alloc(size - this.parsed.upTo);
        await file.read(buffer, 0, buffer.length, this.parsed.upTo);
        const text = this.parsed.partial + buffer.toString("utf8");
        const lines = text.split("\n");
        this.parsed.partial = lines.pop() ?? "";
        this.parsed.upTo = size;
        for (const line of lines)
          if (line.startsWith("{")) this.parsed.lines.push(JSON.parse(line) as Record<string, unknown>);
      }
    } finally {
      await file.close();
    }
    return this.parsed.lines;
  }

  /** Waits for a log line of the current start with message `msg`; returns it. */
  async waitForMessage(msg: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = (await this.currentLines()).find((l) => l.msg === msg);
      if (line) return line;
      if (!this.running && this.options.restartDelayMs === undefined)
        throw new Error(`${this.name} exited before "${msg}":\n${await this.tail()}`);
      if (Date.now() > deadline)
        throw new Error(`${this.name}: no "${msg}" log line in ${timeoutMs} ms:\n${await this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The leader election identity of the current start, from its "operator running" line. */
  async identity(): Promise<string | undefined> {
    const running = (await this.currentLines()).find((l) => l.msg === "operator running");
    const election = running?.leaderElection as { identity?: string } | false | undefined;
    return election ? election.identity : undefined;
  }

  /** Does /readyz answer 200 (every cache synced)? Needs `http`. */
  async ready(): Promise<boolean> {
    const res = await fetch(`${this.healthUrl}/readyz`).catch(() => undefined);
    await res?.body?.cancel();
    return res?.status === 200;
  }

  /** Polls /readyz; resolves with when it first answered 200 (ms since the epoch). */
  async waitUntilReady(timeoutMs = 120_000, intervalMs = 25): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited:\n${this.warnings.join("\n")}`);
      if (await this.ready()) return Date.now();
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    throw new Error(`${this.name}'s /readyz did not answer 200 within ${timeoutMs} ms`);
  }

  /** Its /metrics text, or undefined when it does not answer. Needs `http`. */
  async metricsText(): Promise<string | undefined> {
    const res = await fetch(this.metricsUrl!).catch(() => undefined);
    return res?.ok ? res.text() : undefined;
  }

  /** SIGTERM without a restart, then SIGKILL after `graceMs`; resolves with the exit and how long it took. */
  async stop(graceMs = 45_000): Promise<(Exit & { ms: number }) | undefined> {
    this.stopped = true;
    let exit: (Exit & { ms: number }) | undefined;
    if (this.running) {
      const started = performance.now();
      this.requested = true;
      const child = this.child!;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      exit = { ...(await this.exited), ms: performance.now() - started };
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => (this.log ? this.log.end(resolve) : resolve()));
    return exit;
  }

  /** Stops it and removes its temp folder; keeps the log in $DEVICEPASS_FAULT_LOGS when set. */
  async dispose(): Promise<void> {
    await this.stop();
    const keep = process.env.DEVICEPASS_FAULT_LOGS;
    if (keep) {
      await mkdir(keep, { recursive: true });
      await copyFile(this.logFile, join(keep, `${this.name}-${Date.now()}.log`)).catch(() => {});
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

// One operator replica for fault tests: `node operator/src/main.ts …` as its own process, restarted
// after it exits the way a Deployment's kubelet would (unless the test stopped it), its JSON log
// kept across restarts, and SIGKILL / SIGTERM on demand.
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, createWriteStream, statSync, type WriteStream } from "node:fs";
import { copyFile, mkdir, open, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ownedTempDir } from "../../harness/owned-dir.ts";

const mainScript = join(import.meta.dirname, "..", "..", "src", "main.ts");

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() of the exit. */
  at: number;
  /** Did the test cause it (kill/stop), or did the operator exit on its own? */
  requested: boolean;
}

export interface ReplicaOptions {
  name: string;
  args: string[];
  /** Restart after an exit the test did not ask for, like a pod's restartPolicy: Always. */
  restartDelayMs?: number;
  env?: NodeJS.ProcessEnv;
}

export class OperatorReplica {
  readonly name: string;
  readonly exits: Exit[] = [];
  /** performance.now() of every start. */
  readonly starts: number[] = [];
  readonly logFile: string;
  private readonly dir: string;
  private readonly options: ReplicaOptions;
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

  private constructor(dir: string, options: ReplicaOptions) {
    this.dir = dir;
    this.options = options;
    this.name = options.name;
    this.logFile = join(dir, "operator.log");
  }

  static async start(options: ReplicaOptions): Promise<OperatorReplica> {
    const replica = new OperatorReplica(await ownedTempDir(`devicepass-${options.name}-`), options);
    await replica.spawn();
    return replica;
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
    const child = spawn(process.execPath, [mainScript, ...this.options.args], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, ...this.options.env },
    });
    child.stderr.pipe(log);
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        const exit = { code, signal, at: performance.now(), requested: this.requested };
        this.exits.push(exit);
        resolve(exit);
        if (!this.requested && !this.stopped) {
          // Crash-loop backoff, shortened: the kubelet would wait 10 s at first.
          setTimeout(() => {
            if (!this.stopped && !this.running) void this.spawn();
          }, this.options.restartDelayMs ?? 500);
        }
      }),
    );
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    this.starts.push(performance.now());
    await writeFile(join(this.dir, "pids", "operator"), String(child.pid));
  }

  /** Sends `signal` and waits for the exit; the replica stays down until restart(). */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<Exit> {
    if (!this.running) throw new Error(`${this.name} is not running`);
    this.requested = true;
    this.child!.kill(signal);
    return this.exited;
  }

  /** Starts the process again after kill(). */
  async restart(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is running`);
    await this.spawn();
  }

  /** The whole log, every start of the process. */
  async logText(): Promise<string> {
    return readFile(this.logFile, "utf8").catch(() => "");
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

  async tail(lines = 30): Promise<string> {
    return (await this.logText()).split("\n").slice(-lines).join("\n");
  }

  /** SIGTERM without a restart; resolves with the exit. Idempotent; removes the temp folder. */
  async stop(): Promise<Exit | undefined> {
    this.stopped = true;
    let exit: Exit | undefined;
    if (this.running) {
      this.requested = true;
      const child = this.child!;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 45_000);
      exit = await this.exited;
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => (this.log ? this.log.end(resolve) : resolve()));
    return exit;
  }

  /** Removes the temp folder; keeps the log in $DEVICEPASS_FAULT_LOGS when that is set. */
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

// The operator as the bench runs it: a separate `node operator/src/main.ts` process, with its CPU
// time and memory read from /proc, its stderr kept in a file, and SIGTERM to stop it.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";

/** The operator's entry point, its TypeScript source (Node strips the types as it loads it). */
export const operatorEntry = join(import.meta.dirname, "..", "src", "main.ts");

let clockTicks: number | undefined;
/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ, 100 on Linux). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User plus system CPU seconds process `pid` used so far (/proc/<pid>/stat utime + stime). */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no TCP port was assigned");
  return address.port;
}

/** CPU seconds every core of the machine spent busy so far (/proc/stat, all but idle and iowait). */
export async function machineBusySeconds(): Promise<number> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n")[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / ticksPerSecond();
}

/**
 * Splits the machine's CPU time over a phase: the operator, kube-apiserver with etcd, the bench
 * itself, and everything else (other people's work on a shared machine, kube-controller-manager).
 */
export class CpuMeter {
  private readonly serverPids: number[];
  constructor(serverPids: number[]) {
    this.serverPids = serverPids;
  }

  async sample(operatorPid?: number): Promise<CpuSample> {
    const [machine, server, operator] = await Promise.all([
      machineBusySeconds(),
      Promise.all(this.serverPids.map(cpuSecondsOf)).then((t) => t.reduce((a, b) => a + b, 0)),
      operatorPid === undefined ? 0 : cpuSecondsOf(operatorPid).catch(() => 0),
    ]);
    const self = process.cpuUsage();
    return { at: performance.now(), machine, server, operator, bench: (self.user + self.system) / 1e6 };
  }

  /** Seconds of CPU each party used between two samples; `extra` is CPU of children measured apart. */
  static between(a: CpuSample, b: CpuSample, extra = 0): CpuSplit {
    const operator = b.operator - a.operator;
    const server = b.server - a.server;
    const bench = b.bench - a.bench + extra;
    const wallSeconds = (b.at - a.at) / 1000;
    const others = Math.max(0, b.machine - a.machine - operator - server - bench);
    return { wallSeconds, operator, server, bench, others };
  }
}

export interface CpuSample {
  at: number;
  machine: number;
  server: number;
  operator: number;
  bench: number;
}

export interface CpuSplit {
  wallSeconds: number;
  operator: number;
  server: number;
  bench: number;
  /** Everything else on the machine: other processes, kube-controller-manager. */
  others: number;
}

export interface OperatorProcessOptions {
  kubeconfig: string;
  passdbNamespace: string;
  logFile: string;
  logLevel?: string;
  /** The entry point (default: the TypeScript source). */
  script?: string;
  /** Extra flags for node itself, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** Extra flags for the operator. */
  args?: string[];
}

export interface Memory {
  /** Peak resident set size (VmHWM), MiB. */
  peakRssMiB: number;
  /** Resident set size now (VmRSS), MiB. */
  rssMiB: number;
}

/** Per controller: reconciles and the seconds they took. */
export type Reconciles = Record<string, { count: number; seconds: number }>;

/** What happened between two readings of the counters. */
export function reconcilesBetween(a: Reconciles, b: Reconciles): Reconciles {
  return Object.fromEntries(
    Object.entries(b).map(([controller, { count, seconds }]) => [
      controller,
      { count: count - (a[controller]?.count ?? 0), seconds: seconds - (a[controller]?.seconds ?? 0) },
    ]),
  );
}

export interface Heap {
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
}

export class OperatorProcess {
  readonly pid: number;
  /** When it was spawned (ms since the epoch). */
  readonly startedAt: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Log lines at warn level or above (the operator runs at warn unless told otherwise). */
  readonly warnings: string[] = [];
  private readonly child: ChildProcess;
  private readonly healthUrl: string;
  private readonly metricsUrl: string;

  private constructor(child: ChildProcess, startedAt: number, healthPort: number, metricsPort: number) {
    this.child = child;
    this.pid = child.pid!;
    this.startedAt = startedAt;
    this.healthUrl = `http://127.0.0.1:${healthPort}`;
    this.metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    this.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  }

  static async start(options: OperatorProcessOptions): Promise<OperatorProcess> {
    const healthPort = await freePort();
    const metricsPort = await freePort();
    const args = [
      ...(options.nodeArgs ?? []),
      options.script ?? operatorEntry,
      "--kubeconfig",
      options.kubeconfig,
      "--passdb-namespace",
      options.passdbNamespace,
      "--log-level",
      options.logLevel ?? "warn",
      "--health-addr",
      `127.0.0.1:${healthPort}`,
      "--metrics-addr",
      `127.0.0.1:${metricsPort}`,
      ...(options.args ?? []),
    ];
    // process.execPath: the Node 24 binary itself, so that the pid is the operator's, not a wrapper's.
    const startedAt = Date.now();
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    const operator = new OperatorProcess(child, startedAt, healthPort, metricsPort);
    const log = createWriteStream(options.logFile, { flags: "a" });
    let pending = "";
    child.stderr.on("data", (chunk: Buffer) => {
      log.write(chunk);
      const lines = (pending + chunk.toString("utf8")).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        // pino levels: 40 warn, 50 error, 60 fatal; anything that is not JSON is a crash trace.
        const level = /^\{.*"level":(\d+)/.exec(line)?.[1];
        if (line.trim() && (level === undefined || Number(level) >= 40)) operator.warnings.push(line);
      }
    });
    void operator.exited.then(() => log.end());
    return operator;
  }

  /** Does /readyz answer 200 (every cache synced)? */
  async ready(): Promise<boolean> {
    const res = await fetch(`${this.healthUrl}/readyz`).catch(() => undefined);
    await res?.body?.cancel();
    return res?.status === 200;
  }

  /** Polls /readyz every `intervalMs`; resolves with when it first answered 200 (ms since the epoch). */
  async waitUntilReady(timeoutMs = 120_000, intervalMs = 25): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`the operator exited:\n${this.warnings.join("\n")}`);
      if (await this.ready()) return Date.now();
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    throw new Error(`the operator's /readyz did not answer 200 within ${timeoutMs} ms`);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** User plus system CPU seconds used so far. */
  cpuSeconds(): Promise<number> {
    return cpuSecondsOf(this.pid);
  }

  async memory(): Promise<Memory> {
    const status = await readFile(`/proc/${this.pid}/status`, "utf8");
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    return { peakRssMiB: kib("VmHWM") / 1024, rssMiB: kib("VmRSS") / 1024 };
  }

  private async metrics(): Promise<string | undefined> {
    const res = await fetch(this.metricsUrl).catch(() => undefined);
    return res?.ok ? res.text() : undefined;
  }

  /**
   * Reconciles so far and the seconds they took, per controller, from the operator's own
   * controller_runtime_reconcile_total and controller_runtime_reconcile_time_seconds_sum.
   */
  async reconciles(): Promise<Reconciles> {
    const text = (await this.metrics()) ?? "";
    const out: Reconciles = {};
    const entry = (controller: string) => (out[controller] ??= { count: 0, seconds: 0 });
    for (const [, controller, value] of text.matchAll(
      /^controller_runtime_reconcile_total\{[^}]*controller="([^"]+)"[^}]*\} (\S+)$/gm,
    ))
      entry(controller!).count += Number(value);
    for (const [, controller, value] of text.matchAll(
      /^controller_runtime_reconcile_time_seconds_sum\{[^}]*controller="([^"]+)"[^}]*\} (\S+)$/gm,
    ))
      entry(controller!).seconds += Number(value);
    return out;
  }

  /** V8 heap and off-heap memory, MiB, from the operator's own /metrics (prom-client's defaults). */
  async heap(): Promise<Heap | undefined> {
    const text = await this.metrics();
    if (text === undefined) return undefined;
    const metric = (name: string) =>
      Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? NaN) / 2 ** 20;
    return {
      heapUsedMiB: metric("nodejs_heap_size_used_bytes"),
      heapTotalMiB: metric("nodejs_heap_size_total_bytes"),
      externalMiB: metric("nodejs_external_memory_bytes"),
    };
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how long it took to exit. */
  async stop(graceMs = 30_000): Promise<{ ms: number; code: number | null; signal: NodeJS.Signals | null }> {
    const started = performance.now();
    if (!this.running) return { ms: 0, ...(await this.exited) };
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    const result = await this.exited;
    clearTimeout(timer);
    return { ms: performance.now() - started, ...result };
  }
}

/**
 * When a process became idle: the start of the first `windowMs` window, after `from`, in which
 * it used at most `maxCpuShare` of one core. Samples every `sampleMs`; gives up at `timeoutMs`.
 */
export async function waitForCpuIdle(
  operator: OperatorProcess,
  {
    from = Date.now(),
    windowMs = 1_000,
    sampleMs = 100,
    maxCpuShare = 0.03,
    timeoutMs = 300_000,
  }: { from?: number; windowMs?: number; sampleMs?: number; maxCpuShare?: number; timeoutMs?: number } = {},
): Promise<number> {
  const samples: { at: number; cpu: number }[] = [];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const at = Date.now();
    samples.push({ at, cpu: await operator.cpuSeconds() });
    // The latest sample at least a window ago (and after `from`) opens the window that ends now.
    const windowStart = samples.findLast((s) => s.at <= at - windowMs && s.at >= from);
    if (windowStart) {
      const used = samples.at(-1)!.cpu - windowStart.cpu;
      if (used <= ((at - windowStart.at) / 1000) * maxCpuShare) return windowStart.at;
    }
    await new Promise((resolve) => setTimeout(resolve, sampleMs));
  }
  throw new Error(`the operator did not become idle within ${timeoutMs} ms`);
}

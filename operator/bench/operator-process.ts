// What the bench reads off the operator's process (harness/operator-process.ts runs it): its CPU
// time and memory from /proc, its reconciles and heap from its /metrics, and the machine's CPU split.
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { OperatorProcess } from "../harness/operator-process.ts";

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

export interface Memory {
  /** Peak resident set size (VmHWM), MiB. */
  peakRssMiB: number;
  /** Resident set size now (VmRSS), MiB. */
  rssMiB: number;
  /** Of it, file pages (RssFile: the node binary's code, the same for any Node program) and the rest. */
  fileMiB: number;
  anonMiB: number;
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

/** The operator as the bench runs it: watching every namespace, warnings only, /metrics and /readyz on. */
export function startBenchOperator(options: {
  kubeconfig: string;
  passdbNamespace: string;
  logFile: string;
  script?: string;
  nodeArgs?: string[];
  args?: string[];
  env?: NodeJS.ProcessEnv;
}): Promise<OperatorProcess> {
  return OperatorProcess.start({
    name: "bench-operator",
    logFile: options.logFile,
    script: options.script,
    nodeArgs: options.nodeArgs,
    env: options.env,
    http: true,
    args: [
      "--kubeconfig", options.kubeconfig,
      "--passdb-namespace", options.passdbNamespace,
      "--log-level", "warn",
      ...(options.args ?? []),
    ], // prettier-ignore
  });
}

/** Peak and current RSS of a process, from /proc/<pid>/status. */
export async function memoryOf(pid: number): Promise<Memory> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  return {
    peakRssMiB: kib("VmHWM") / 1024,
    rssMiB: kib("VmRSS") / 1024,
    fileMiB: kib("RssFile") / 1024,
    anonMiB: kib("RssAnon") / 1024,
  };
}

/**
 * Reconciles so far and the seconds they took, per controller, from the operator's own
 * controller_runtime_reconcile_total and controller_runtime_reconcile_time_seconds_sum.
 */
export async function reconcilesOf(operator: OperatorProcess): Promise<Reconciles> {
  const text = (await operator.metricsText()) ?? "";
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
export async function heapOf(operator: OperatorProcess): Promise<Heap | undefined> {
  const text = await operator.metricsText();
  if (text === undefined) return undefined;
  const metric = (name: string) =>
    Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? NaN) / 2 ** 20;
  return {
    heapUsedMiB: metric("nodejs_heap_size_used_bytes"),
    heapTotalMiB: metric("nodejs_heap_size_total_bytes"),
    externalMiB: metric("nodejs_external_memory_bytes"),
  };
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
    samples.push({ at, cpu: await cpuSecondsOf(operator.pid!) });
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

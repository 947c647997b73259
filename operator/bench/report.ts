// The bench's report: its JSON shape, percentiles, and the Markdown tables it prints (the same
// tables docs/benchmarks.md shows).
import type { TuningPoint } from "./limit.ts";
import type { CpuSplit, Heap, Reconciles } from "./operator-process.ts";

export type Counts = Record<string, number>;

export interface BenchReport {
  version: 1;
  startedAt: string;
  params: {
    devices: number;
    addresses: number;
    rotations: number;
    idleSeconds: number;
    /** How the operator ran: node flags, entry point, operator flags (besides kubeconfig and namespaces). */
    operator: string;
    /** The commit of the operator's source ("+changes": operator/src had uncommitted changes). */
    commit?: string;
  };
  machine: {
    cpu: string;
    cores: number;
    memoryGiB: number;
    kernel: string;
    node: string;
    kubernetes: string;
    /** 1-minute load average when the bench started: others' work on a shared machine. */
    loadAverage: number;
  };
  convergence: {
    ms: number;
    /** How long the bench took to create the addresses and devices (inside ms). */
    applyMs: number;
    /** CPU seconds of the operator, kube-apiserver with etcd, the bench, and everything else. */
    cpu: CpuSplit;
    /** Devices Ready and published, every half second from the first create. */
    timeline: { ms: number; ready: number; published: number; rssMiB: number }[];
    /** Operator requests received from the first create until convergence was observed. */
    requests: Counts;
    writes: number;
    databaseWrites: number;
    /** The same, until the operator made no request for 2 s (trailing status updates). */
    untilQuiet: { ms: number; requests: Counts; writes: number; databaseWrites: number };
  };
  limit: {
    writeMix: Counts;
    notReplayed: Counts;
    writes: number;
    /** Writes of the limit client's user in the audit log during its run: a cross-check. */
    auditedWrites: number;
    concurrency: number;
    tuning: TuningPoint[];
    writesMs: number;
    /** CPU during the replay (the limit client is the bench). */
    writesCpu: CpuSplit;
    argon2: {
      ms: number;
      count: number;
      concurrency: number;
      tuning: { concurrency: number; ms: number; count: number }[];
      /** The hashing process is counted as the bench. */
      cpu: CpuSplit;
    };
    /** max(writesMs, argon2.ms): the definition the ratio uses. */
    ms: number;
    ratio: number;
    /** Both at once, competing for the same cores as the operator's convergence did. */
    combinedMs: number | undefined;
    combinedCpu: CpuSplit | undefined;
    combinedRatio: number | undefined;
    /** See workRatio(). */
    workRatio?: number | undefined;
    /**
     * The stricter limit: the writes a device needs at least (its Secret, one status write, its
     * share of one shard write per batch window) by the minimal client, and the hashing, at once.
     */
    strict?: { writeMix: Counts; ms: number; cpu: CpuSplit; ratio: number } | undefined;
  };
  rotation: {
    count: number;
    method: string;
    p50Ms: number;
    p95Ms: number;
    p99Ms: number;
    maxMs: number;
    meanMs: number;
    requests: Counts;
    writesPerRotation: number;
  };
  idle: { seconds: number; requests: Counts; writes: number; cpuSeconds: number };
  restart: {
    shutdownMs: number;
    shutdownWrites: number;
    /** Spawn → /readyz answers 200 (every cache listed and synced). */
    syncedMs: number;
    /** Spawn → the start of the first second the operator used < 3% of a core (start-up pass done). */
    idleMs: number;
    requests: Counts;
    writes: number;
    stillConverged: boolean;
    cpuSeconds: number;
  };
  /** Reconciles per controller and the seconds they took, from the operator's /metrics. */
  reconciles: { convergence: Reconciles; rotation: Reconciles; idle: Reconciles; restart: Reconciles };
  memory: {
    /** RSS once the caches synced, before any device existed: the fixed cost. */
    rssAtStartMiB: number;
    peakRssMiB: number;
    rssAfterIdleMiB: number;
    /** Of that, file pages: the node binary's code (the same for any Node program), shared and reclaimable. */
    fileAfterIdleMiB?: number;
    restartPeakRssMiB: number;
    /** The V8 heap (used, total) and off-heap memory after the idle period, and after the restart. */
    heapAfterIdle: Heap | undefined;
    restartHeap: Heap | undefined;
  };
  targets: { name: string; target: string; value: string; met: boolean }[];
  operatorWarnings: { count: number; first: string[] };
}

/** Nearest-rank percentile of `values` (need not be sorted). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * CPU-seconds of the operator and the API server during convergence over those of the API server,
 * the limit client and the hashing when both ran at once: the same comparison as the wall-clock
 * ratio, but one that other processes on a shared machine hardly move.
 */
export function workRatio(r: Pick<BenchReport, "convergence" | "limit">): number | undefined {
  const limit = r.limit.combinedCpu;
  if (!limit) return undefined;
  return (r.convergence.cpu.operator + r.convergence.cpu.server) / (limit.server + limit.bench);
}

export const sum = (counts: Counts) => Object.values(counts).reduce((a, b) => a + b, 0);

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
const ms = (n: number) => `${Math.round(n)} ms`;
const mark = (met: boolean) => (met ? "✓" : "✗");
/** Where the machine's CPU went: "operator / server / bench / others" in seconds. */
const cpuSplit = (c: CpuSplit) =>
  [c.operator, c.server, c.bench, c.others].map((x) => (x === 0 ? "–" : x.toFixed(1))).join(" / ") + " s";

/** Operator CPU-seconds per device during convergence. */
export const cpuPerDevice = (r: Pick<BenchReport, "convergence" | "params">) =>
  r.convergence.cpu.operator / r.params.devices;

/** Peak RSS targets by the size of the run. */
function rssTarget(devices: number): { target: string; mib: number } {
  return devices >= 50_000
    ? { target: "< 400 MiB at 50,000 devices", mib: 400 }
    : { target: "< 150 MiB at 5,000 devices", mib: 150 };
}

export function evaluateTargets(r: Omit<BenchReport, "targets">): BenchReport["targets"] {
  const strict = r.limit.strict;
  const rss = rssTarget(r.params.devices);
  return [
    {
      name: "convergence",
      target: strict ? "≤ 1.5× the stricter limit" : "≤ 1.5× the limit",
      value: `${(strict?.ratio ?? r.limit.ratio).toFixed(2)}×`,
      met: (strict?.ratio ?? r.limit.ratio) <= 1.5,
    },
    { name: "rotation p99", target: "< 300 ms", value: ms(r.rotation.p99Ms), met: r.rotation.p99Ms < 300 },
    { name: "idle writes", target: "0", value: int(r.idle.writes), met: r.idle.writes === 0 },
    { name: "restart writes", target: "0", value: int(r.restart.writes), met: r.restart.writes === 0 },
    {
      name: "peak RSS",
      target: rss.target,
      value: `${r.memory.peakRssMiB.toFixed(0)} MiB`,
      met: r.memory.peakRssMiB < rss.mib,
    },
    {
      name: "restart ready",
      target: "within 10 s",
      value: seconds(r.restart.syncedMs),
      met: r.restart.syncedMs < 10_000,
    },
  ];
}

/** The report as Markdown: the summary, then the operator's requests phase by phase. */
export function formatReport(r: BenchReport): string {
  const target = (name: string) => {
    const t = r.targets.find((x) => x.name === name)!;
    return `${t.target} ${mark(t.met)}`;
  };
  const c = r.convergence;
  const l = r.limit;
  const rows: [string, string, string][] = [
    ["Convergence: apply → every device Ready, all hashes in the database", seconds(c.ms), ""],
    ["… of which the bench's creates (addresses, then devices, 32 in flight)", seconds(c.applyMs), ""],
    ["CPU during convergence: operator / API server and etcd / bench / other processes", cpuSplit(c.cpu), ""],
    [
      "Time per device / operator CPU-seconds per device (convergence)",
      `${(c.ms / r.params.devices).toFixed(2)} ms / ${(cpuPerDevice(r) * 1000).toFixed(2)} ms`,
      "",
    ],
    ["Operator requests / writes until converged", `${int(sum(c.requests))} / ${int(c.writes)}`, ""],
    [
      "Database writes (shard Secrets) until converged / until quiet",
      `${int(c.databaseWrites)} / ${int(c.untilQuiet.databaseWrites)}`,
      "",
    ],
    [
      `Limit, writes: the same ${int(l.writes)} writes by a minimal client, ${l.concurrency} in flight`,
      seconds(l.writesMs),
      "",
    ],
    [
      "CPU during those writes: – / API server and etcd / limit client / other processes",
      cpuSplit(l.writesCpu),
      "",
    ],
    [
      `Limit, hashing: argon2id × ${int(l.argon2.count)}, ${l.argon2.concurrency} in flight`,
      seconds(l.argon2.ms),
      "",
    ],
    [
      "CPU during that hashing: – / API server and etcd / hashing process and bench / other processes",
      cpuSplit(l.argon2.cpu),
      "",
    ],
    ["Limit = max(writes, hashing)", seconds(l.ms), ""],
    ["Convergence / limit", `${l.ratio.toFixed(2)}×`, l.strict ? "" : target("convergence")],
  ];
  if (l.combinedMs !== undefined && l.combinedRatio !== undefined && l.combinedCpu !== undefined)
    rows.push(
      ["Writes and hashing at once (the cores are shared, as in convergence)", seconds(l.combinedMs), ""],
      [
        "CPU during that: – / API server and etcd / limit client, hashing and bench / other processes",
        cpuSplit(l.combinedCpu),
        "",
      ],
      ["Convergence / that", `${l.combinedRatio.toFixed(2)}×`, ""],
      [
        "Work ratio: CPU-seconds of operator and API server in convergence / of API server, limit client and hashing at once",
        `${workRatio(r)!.toFixed(2)}×`,
        "",
      ],
    );
  if (l.strict)
    rows.push(
      [
        `Stricter limit: ${int(sum(l.strict.writeMix))} writes a device needs at least (${Object.entries(
          l.strict.writeMix,
        )
          .map(([k, v]) => `${int(v)} ${k}`)
          .join(", ")}) and the hashing, at once`,
        seconds(l.strict.ms),
        "",
      ],
      [
        "CPU during that: – / API server and etcd / limit client, hashing and bench / other processes",
        cpuSplit(l.strict.cpu),
        "",
      ],
      ["Convergence / stricter limit", `${l.strict.ratio.toFixed(2)}×`, target("convergence")],
    );
  rows.push(
    [
      `Rotation p50 / p95 / p99 / max (${r.rotation.count}, ${r.rotation.method})`,
      `${ms(r.rotation.p50Ms)} / ${ms(r.rotation.p95Ms)} / ${ms(r.rotation.p99Ms)} / ${ms(r.rotation.maxMs)}`,
      target("rotation p99"),
    ],
    ["Operator writes per rotation", r.rotation.writesPerRotation.toFixed(1), ""],
    [`Idle ${r.idle.seconds} s: writes`, int(r.idle.writes), target("idle writes")],
    [
      `Idle ${r.idle.seconds} s: requests / CPU`,
      `${int(sum(r.idle.requests))} / ${r.idle.cpuSeconds.toFixed(2)} s`,
      "",
    ],
    ["Restart: SIGTERM → exit", ms(r.restart.shutdownMs), ""],
    [
      "Restart: spawn → ready (/readyz: caches synced) / → idle (start-up pass done)",
      `${seconds(r.restart.syncedMs)} / ${seconds(r.restart.idleMs)}`,
      target("restart ready"),
    ],
    ["Restart: writes", int(r.restart.writes), target("restart writes")],
    [
      "Restart: requests / CPU until idle",
      `${int(sum(r.restart.requests))} / ${r.restart.cpuSeconds.toFixed(2)} s`,
      "",
    ],
    [
      "RSS with no devices yet (caches synced) / after the idle period",
      `${r.memory.rssAtStartMiB.toFixed(0)} MiB / ${r.memory.rssAfterIdleMiB.toFixed(0)} MiB`,
      "",
    ],
    ...(r.memory.fileAfterIdleMiB === undefined
      ? []
      : [
          [
            "… of which file pages (the node binary's code) after the idle period",
            `${r.memory.fileAfterIdleMiB.toFixed(0)} MiB`,
            "",
          ] as [string, string, string],
        ]),
    [
      "V8 heap used / total, off-heap (after the idle period)",
      r.memory.heapAfterIdle
        ? `${r.memory.heapAfterIdle.heapUsedMiB.toFixed(0)} / ${r.memory.heapAfterIdle.heapTotalMiB.toFixed(0)} MiB, ${r.memory.heapAfterIdle.externalMiB.toFixed(0)} MiB`
        : "n/a",
      "",
    ],
    [
      "Peak RSS (VmHWM), first process / restarted process",
      `${r.memory.peakRssMiB.toFixed(0)} MiB / ${r.memory.restartPeakRssMiB.toFixed(0)} MiB`,
      target("peak RSS"),
    ],
  );
  const lines = [
    `### ${int(r.params.devices)} devices over ${int(r.params.addresses)} addresses`,
    "",
    `${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, Linux ${r.machine.kernel}, ` +
      `Node ${r.machine.node}, Kubernetes ${r.machine.kubernetes}; load average ${r.machine.loadAverage.toFixed(1)} at the start. ` +
      `Operator: \`${r.params.operator}\`${r.params.commit ? ` at ${r.params.commit}` : ""}.`,
    "",
    "| Measure | Value | Target |",
    "|---|--:|---|",
    ...rows.map(([a, b, t]) => `| ${a} | ${b} | ${t} |`),
    "",
    "Operator requests by verb and resource (audit log, user devicepass-operator); `secrets(passdb)` are the database's shard Secrets:",
    "",
  ];
  const phases: [string, Counts][] = [
    ["until converged", c.requests],
    ["until quiet", c.untilQuiet.requests],
    [`${r.rotation.count} rotations`, r.rotation.requests],
    [`idle ${r.idle.seconds} s`, r.idle.requests],
    ["restart", r.restart.requests],
    ["limit client", l.writeMix],
  ];
  const keys = [...new Set(phases.flatMap(([, counts]) => Object.keys(counts)))].sort();
  lines.push(
    `| Request | ${phases.map(([name]) => name).join(" | ")} |`,
    `|---|${phases.map(() => "--:").join("|")}|`,
    ...keys.map(
      (k) => `| ${k} | ${phases.map(([, counts]) => (counts[k] ? int(counts[k]) : "")).join(" | ")} |`,
    ),
  );
  const reconcilePhases: [string, Reconciles][] = [
    ["convergence (until quiet)", r.reconciles.convergence],
    [`${r.rotation.count} rotations`, r.reconciles.rotation],
    [`idle ${r.idle.seconds} s`, r.reconciles.idle],
    ["restart (until idle + 3 s)", r.reconciles.restart],
  ];
  const controllers = [...new Set(reconcilePhases.flatMap(([, rc]) => Object.keys(rc)))].sort();
  if (controllers.length > 0)
    lines.push(
      "",
      "Reconciles, and the seconds they took, by controller (the operator's own /metrics):",
      "",
      `| Controller | ${reconcilePhases.map(([name]) => name).join(" | ")} |`,
      `|---|${reconcilePhases.map(() => "--:").join("|")}|`,
      ...controllers.map(
        (c) =>
          `| ${c} | ${reconcilePhases
            .map(([, rc]) => (rc[c]?.count ? `${int(rc[c].count)} (${rc[c].seconds.toFixed(1)} s)` : ""))
            .join(" | ")} |`,
      ),
    );
  if (Object.keys(l.notReplayed).length > 0)
    lines.push("", `Not replayed by the limit client (no writer for them): ${JSON.stringify(l.notReplayed)}`);
  return lines.join("\n") + "\n";
}

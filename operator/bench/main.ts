// `npm run bench`: the operator as a separate process against a real control plane, measured for
// convergence (against the API server's and argon2's own limits), rotation latency, idle cost,
// restart and memory; then the mail server (mail-server.ts); prints Markdown tables and writes
// .bench/report-<N>.json and .bench/mail-server-<N>.json.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ControlPlane } from "../harness/control-plane.ts";
import { kubectlFor } from "../harness/kubectl.ts";
import { components, labels } from "../src/api/names.ts";
import { defaultMaxDevicesPerAddress } from "../src/api/schemas.ts";
import { defaults } from "../src/config.ts";
import { defaultMemoryLimitMiB, operatorEnvWithin } from "../src/install/runtime-env.ts";
import { KubeClient } from "../src/kube/client.ts";
import { resources } from "../src/kube/resources.ts";
import { createLogger } from "../src/log.ts";
import {
  AuditLog,
  auditPolicy,
  benchUsers,
  countByVerbAndResource,
  kindOf,
  writesOf,
  type AuditRecord,
} from "./audit.ts";
import {
  planWrites,
  runWrites,
  setupLimitTargets,
  tuneArgon2,
  tuneConcurrency,
  argon2Limit,
} from "./limit.ts";
import { Observer } from "./observer.ts";
import {
  CpuMeter,
  cpuSecondsOf,
  heapOf,
  memoryOf,
  reconcilesBetween,
  reconcilesOf,
  startBenchOperator,
  waitForCpuIdle,
  type CpuSplit,
} from "./operator-process.ts";
import { evaluateTargets, formatReport, percentile, workRatio, type BenchReport } from "./report.ts";
import { createMailDomain, createNamespace, createWorkload, rotate } from "./workload.ts";
import { formatMailServerReport, runMailServerBench } from "./mail-server.ts";

const usage = `Usage: npm run bench -- [options]

  --devices N            MailDevices to apply at once (default 1000)
  --addresses N          MailAddresses they are spread over (default: devices / 20, the
                         default device limit per address)
  --rotations N          rotations to time, one after another (default 200)
  --idle-seconds N       length of the idle measurement (default 60)
  --out FILE             JSON report (default .bench/report-<devices>.json)
  --operator-node-arg A  a flag for the operator's node, e.g. --cpu-prof (repeatable)
  --operator-arg A       a flag for the operator itself (repeatable)
  --no-combined-limit    skip the run of writes and hashing at once
  --no-limits            measure the operator only (convergence to restart and memory) and print
                         a summary instead of the tables: for profiling and trying changes
  --heap-snapshot        have the operator write a heap snapshot once converged (into .bench/)
  --report FILE          print the tables of an earlier JSON report, and do nothing else
  --operator-entry FILE  the operator's entry point (default: compiled as the image compiles it,
                         into .bench/dist; operator/src/main.ts runs the sources, type-stripped)
  --operator-env N=V     an environment variable for the operator's process, over the image's own
                         as the chart's default memory limit resolves them
                         (operator/src/install/runtime-env.ts; repeatable), e.g. NODE_OPTIONS=

The mail server (after the above, on its own control plane: Dovecot, passdb-sync, the operator):
  --mail-rotations N     rotations timed at the IMAP port per Dovecot configuration (default
                         50, at most --rotations)
  --mail-devices LIST    devices per address in the login table (default 1,10,20,50)
  --mail-logins N        logins per cell of the login table (default 20)
  --last-used-devices N  devices whose logins the last-used run stamps, 20 per address (default:
                         --devices, at most 1000)
  --last-used-seconds N  length of the last-used run, 10x faster than real
                         time (default 150)
  --no-mail-server       skip the mail server
  --mail-only            only the mail server
`;

const benchDir = join(import.meta.dirname, "..", "..", ".bench");
const namespace = "bench";
const passdbNamespace = "devicepass-system";

const say = (line: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The operator as the image runs it: compiled with `npm run build`'s tsconfig (the Dockerfile's
 * build stage), into .bench/dist. Running the TypeScript sources costs ~30 MiB of RSS more (Node's
 * type stripper) and some CPU, which the image never pays.
 */
function compileOperator(): string {
  const root = join(import.meta.dirname, "..", "..");
  const outDir = join(benchDir, "dist");
  say("compiling the operator as the image does (tsc -p tsconfig.build.json)");
  execFileSync(
    process.execPath,
    [
      join(root, "node_modules", "typescript", "bin", "tsc"),
      "-p",
      join(root, "tsconfig.build.json"),
      "--outDir",
      outDir,
    ],
    { stdio: "inherit" },
  );
  return join(outDir, "operator", "src", "main.js");
}

/** The commit the operator's source is at, with "+changes" when operator/src differs from it. */
function sourceCommit(): string {
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: join(import.meta.dirname, "..", ".."), encoding: "utf8" }).trim();
  try {
    return (
      git("rev-parse", "--short", "HEAD") + (git("status", "--porcelain", "operator/src") ? "+changes" : "")
    );
  } catch {
    return "unknown";
  }
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

/** Polls until `check` returns a value; throws `what` after `timeoutMs`. */
async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      devices: { type: "string" },
      addresses: { type: "string" },
      rotations: { type: "string" },
      "idle-seconds": { type: "string" },
      out: { type: "string" },
      "operator-node-arg": { type: "string", multiple: true },
      "operator-arg": { type: "string", multiple: true },
      "no-combined-limit": { type: "boolean" },
      "no-limits": { type: "boolean" },
      "heap-snapshot": { type: "boolean" },
      "operator-entry": { type: "string" },
      "operator-env": { type: "string", multiple: true },
      report: { type: "string" },
      "mail-rotations": { type: "string" },
      "mail-devices": { type: "string" },
      "mail-logins": { type: "string" },
      "last-used-seconds": { type: "string" },
      "last-used-devices": { type: "string" },
      "no-mail-server": { type: "boolean" },
      "mail-only": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return void process.stdout.write(usage);
  if (values.report) {
    const earlier = JSON.parse(await readFile(values.report, "utf8")) as BenchReport;
    return void process.stdout.write(formatReport(earlier));
  }
  const devices = positive("devices", values.devices, 1000);
  const addresses = Math.min(
    devices,
    positive("addresses", values.addresses, Math.ceil(devices / defaultMaxDevicesPerAddress)),
  );
  const rotations = positive("rotations", values.rotations, 200);
  const idleSeconds = positive("idle-seconds", values["idle-seconds"], 60);
  const out = values.out ?? join(benchDir, `report-${devices}.json`);
  const mailServer = async () => {
    const report = await runMailServerBench({
      rotations: positive("mail-rotations", values["mail-rotations"], Math.min(50, rotations)),
      deviceCounts: (values["mail-devices"] ?? "1,10,20,50")
        .split(",")
        .map((n) => positive("mail-devices", n, 1)),
      logins: positive("mail-logins", values["mail-logins"], 20),
      lastUsedDevices: positive("last-used-devices", values["last-used-devices"], Math.min(devices, 1000)),
      lastUsedSeconds: positive("last-used-seconds", values["last-used-seconds"], 150),
      say,
    });
    const file = join(benchDir, `mail-server-${devices}.json`);
    await mkdir(benchDir, { recursive: true });
    await writeFile(
      file,
      JSON.stringify({ startedAt: new Date().toISOString(), commit: sourceCommit(), ...report }, null, 2) +
        "\n",
    );
    process.stdout.write("\n" + formatMailServerReport(report) + "\n");
    say(`mail server report written to ${file}`);
  };
  if (values["mail-only"]) return mailServer();
  const nodeArgs = values["operator-node-arg"] ?? [];
  if (values["heap-snapshot"]) nodeArgs.push("--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${benchDir}`);
  const operatorArgs = values["operator-arg"] ?? [];
  await mkdir(benchDir, { recursive: true });
  const script = values["operator-entry"] ? resolve(values["operator-entry"]) : compileOperator();
  if (!existsSync(script)) throw new Error(`${script} does not exist`);
  // As in the chart's pod: its memory limit is what Node's heap share applies to.
  const operatorEnv: Record<string, string> = operatorEnvWithin(defaultMemoryLimitMiB);
  for (const setting of values["operator-env"] ?? []) {
    const [name, ...value] = setting.split("=");
    if (!name || value.length === 0) throw new Error(`--operator-env wants NAME=VALUE, not ${setting}`);
    operatorEnv[name] = value.join("=");
  }
  const startedAt = new Date().toISOString();
  const loadAverage = loadavg()[0]!;
  const commit = sourceCommit();

  say(`starting the control plane with an audit policy`);
  const plane = await ControlPlane.start({ auditPolicy, log: say });
  const cleanups: (() => Promise<unknown>)[] = [() => plane.stop()];
  try {
    const kubectl = kubectlFor(plane.binaries.kubectl, plane.kubeconfigPath);
    const crds = join(import.meta.dirname, "..", "..", "crds");
    await kubectl.ok(["apply", "--server-side", "-f", crds]);
    await kubectl.ok(["wait", "--for=condition=Established", "--timeout=60s", "-f", crds]);
    const admin = await KubeClient.fromKubeconfig(plane.kubeconfigPath, "devicepass-bench");
    cleanups.push(() => admin.close());
    const operatorKubeconfig = await plane.kubeconfigFor(benchUsers.operator, ["system:masters"]);
    const limitKubeconfig = await plane.kubeconfigFor(benchUsers.limit, ["system:masters"]);
    await createNamespace(admin, namespace);
    await createNamespace(admin, passdbNamespace);
    await createMailDomain(admin, namespace);
    const audit = new AuditLog(plane.auditLogPath);
    const serverPids = await Promise.all(
      ["kube-apiserver", "etcd"].map(async (name) =>
        Number(await readFile(join(plane.dir, "pids", name), "utf8")),
      ),
    );
    const meter = new CpuMeter(serverPids);
    const operatorRequests = async (from: number, to?: number) => {
      await sleep(300); // blocking audit mode: a request's line is written as it completes
      await audit.refresh();
      return audit.of(benchUsers.operator, from, to);
    };
    /** When the operator's last request arrived, once it has made none for `quietMs`. */
    const quietSince = (from: number, quietMs = 2_000) =>
      until(
        "the operator to go quiet",
        async () => {
          await audit.refresh();
          const last = Math.max(from, ...audit.of(benchUsers.operator, from).map((r) => r.at));
          return Date.now() - last >= quietMs ? last : undefined;
        },
        180_000,
      );
    const counts = (records: readonly AuditRecord[]) => countByVerbAndResource(records, passdbNamespace);
    const dbWrites = (records: readonly AuditRecord[]) =>
      writesOf(records).filter((r) => kindOf(r, passdbNamespace) === "secrets(passdb)").length;

    const log = createLogger("warn");
    const observer = new Observer({ client: admin, log, namespace, passdbNamespace });
    await observer.start();
    cleanups.push(() => observer.stop());

    const startOperator = async (n: number) => {
      const operator = await startBenchOperator({
        kubeconfig: operatorKubeconfig,
        passdbNamespace,
        logFile: join(benchDir, `operator-${devices}-${n}.log`),
        script,
        nodeArgs,
        args: operatorArgs,
        env: operatorEnv,
      });
      cleanups.push(() => operator.dispose());
      return { operator, syncedAt: await operator.waitUntilReady() };
    };

    // 1. Convergence.
    say(`starting the operator (pid below), then applying ${devices} devices over ${addresses} addresses`);
    const { operator: first } = await startOperator(1);
    say(`operator pid ${first.pid}`);
    await quietSince(first.startedAt); // its first pass writes the empty database shards
    const startMemory = await memoryOf(first.pid!);
    const reconciles0 = await reconcilesOf(first);
    const cpuBefore = await meter.sample(first.pid);
    const t0 = Date.now();
    const p0 = performance.now();
    const converged = observer.until(() => observer.converged(devices));
    const timeline: BenchReport["convergence"]["timeline"] = [];
    const sampler = setInterval(() => {
      const ms = Math.round(performance.now() - p0);
      const { size: ready } = observer.ready;
      const { size: published } = observer.published;
      void memoryOf(first.pid!).then(
        ({ rssMiB }) => timeline.push({ ms, ready, published, rssMiB: Math.round(rssMiB) }),
        () => {},
      );
    }, 500);
    await createWorkload(admin, namespace, { devices, addresses });
    const applyMs = performance.now() - p0;
    // Generous: the bench must end with a clear message, not hang, whatever the operator does.
    const convergedAt = await withTimeout(
      converged,
      Math.max(1_800_000, devices * 200),
      () => `convergence: ${observer.ready.size} Ready, ${observer.published.size} published of ${devices}`,
    ).finally(() => clearInterval(sampler));
    const convergenceMs = convergedAt - p0;
    const convergenceCpu = CpuMeter.between(cpuBefore, await meter.sample(first.pid));
    const tConverged = t0 + convergenceMs;
    say(`converged in ${(convergenceMs / 1000).toFixed(2)} s`);
    if (values["heap-snapshot"]) first.signal("SIGUSR2");
    const quietAt = await quietSince(tConverged);
    const reconcilesConverged = await reconcilesOf(first);
    const untilConverged = await operatorRequests(t0, tConverged);
    const untilQuiet = await operatorRequests(t0, quietAt + 1);

    // 2. Rotation latency: one rotation at a time, each of another device. A device's password is
    // regenerated at most once per --min-rotation-interval: wait that out since the last issue, so
    // the latency is the operator's work, not the rate limit.
    await sleep(Math.max(0, convergedAt + defaults.minRotationIntervalMs - performance.now()));
    say(`timing ${rotations} rotations`);
    const keys = observer.deviceKeys().sort();
    const latencies: number[] = [];
    const tRotation = Date.now();
    for (let r = 0; r < rotations; r++) {
      const key = keys[Math.floor((r * keys.length) / rotations) % keys.length]!;
      const name = key.split("/")[1]!;
      const oldHash = observer.hashOf(key)!;
      const started = performance.now();
      const done = observer.until(() => observer.rotated(key, oldHash));
      await rotate(admin, namespace, name, `bench-${r}`);
      latencies.push((await withTimeout(done, 60_000, () => `rotation of ${key}`)) - started);
    }
    const rotationQuiet = await quietSince(Date.now());
    const reconcilesRotated = await reconcilesOf(first);
    const rotationRequests = await operatorRequests(tRotation, rotationQuiet + 1);

    // 3. Idle.
    say(`idle for ${idleSeconds} s`);
    const idleFrom = Date.now();
    const reconcilesIdle0 = await reconcilesOf(first);
    const idleCpu0 = await cpuSecondsOf(first.pid!);
    await sleep(idleSeconds * 1000);
    const idleCpu = (await cpuSecondsOf(first.pid!)) - idleCpu0;
    const reconcilesIdle = reconcilesBetween(reconcilesIdle0, await reconcilesOf(first));
    const idleRequests = await operatorRequests(idleFrom, idleFrom + idleSeconds * 1000);
    const memory = await memoryOf(first.pid!);
    const heap = await heapOf(first);

    // 4. Restart: SIGTERM, then a new process with every device present.
    say(`restarting the operator`);
    const termAt = Date.now();
    const stopped = (await first.stop(30_000))!;
    const shutdownRequests = await operatorRequests(termAt);
    const { operator: second, syncedAt } = await startOperator(2);
    const idleAt = await waitForCpuIdle(second, { from: syncedAt });
    const restartCpu = await cpuSecondsOf(second.pid!);
    await sleep(3_000); // anything a late requeue would write
    const reconcilesRestart = await reconcilesOf(second);
    const restartRequests = await operatorRequests(second.startedAt, Date.now());
    const stillConverged = observer.converged(devices);
    const restartMemory = await memoryOf(second.pid!);
    const restartHeap = await heapOf(second);
    await second.stop(30_000);
    await observer.stop();
    if (values["no-limits"]) {
      const summary = {
        startedAt,
        commit,
        devices,
        loadAverage,
        convergenceMs,
        msPerDevice: convergenceMs / devices,
        cpu: convergenceCpu,
        operatorCpuMsPerDevice: (convergenceCpu.operator * 1000) / devices,
        writesUntilConverged: writesOf(untilConverged).length,
        databaseWrites: dbWrites(untilConverged),
        requests: counts(untilConverged),
        rotation: {
          p50: percentile(latencies, 50),
          p99: percentile(latencies, 99),
          max: Math.max(...latencies),
        },
        idleWrites: writesOf(idleRequests).length,
        restart: {
          syncedMs: syncedAt - second.startedAt,
          idleMs: idleAt - second.startedAt,
          writes: writesOf(restartRequests).length,
          stillConverged,
        },
        memory: {
          start: startMemory.rssMiB,
          peak: memory.peakRssMiB,
          afterIdle: memory.rssMiB,
          afterIdleFile: memory.fileMiB,
          afterIdleAnon: memory.anonMiB,
          heap,
          restartPeak: restartMemory.peakRssMiB,
          restartHeap,
        },
        reconciles: reconcilesBetween(reconciles0, reconcilesConverged),
        timeline,
      };
      await writeFile(out, JSON.stringify(summary, null, 2) + "\n");
      const { timeline: _timeline, ...shown } = summary;
      process.stdout.write(JSON.stringify(shown, null, 2) + "\n");
      return;
    }

    // 5. The limit: the same writes by a minimal client, and argon2id on all cores.
    say(`measuring the limit`);
    const writeMix = counts(writesOf(untilConverged));
    const shardList = await admin.list<{ data?: Record<string, string> }>(
      { ...resources.secrets, namespace: passdbNamespace },
      { labelSelector: `${labels.component}=${components.passdb}` },
    );
    const targets = await setupLimitTargets(admin, plane.kubeconfigPath, {
      namespace: "bench-limit",
      passdbNamespace: "bench-limit-passdb",
      devices,
      addresses,
      mix: writeMix,
      shardData: shardList.items.map((s) => s.data ?? {}),
    });
    const totalWrites = Object.values(writeMix).reduce((a, b) => a + b, 0);
    const tuning = await tuneConcurrency(
      limitKubeconfig,
      writeMix,
      targets,
      Math.min(totalWrites, 1000),
      [4, 8, 16, 32, 64],
    );
    const plan = planWrites(writeMix, targets, "full");
    const limitFrom = Date.now();
    const writesCpu0 = await meter.sample();
    const writesMs = await runWrites(limitKubeconfig, plan.tasks, tuning.best);
    const writesCpu = CpuMeter.between(writesCpu0, await meter.sample());
    await sleep(300);
    await audit.refresh();
    const auditedWrites = writesOf(audit.of(benchUsers.limit, limitFrom)).length;
    say(`writes: ${plan.tasks.length} in ${(writesMs / 1000).toFixed(2)} s at ${tuning.best} in flight`);
    const argon2Tuning = await tuneArgon2(Math.min(devices, 100));
    const argon2Cpu0 = await meter.sample();
    const argon2 = await argon2Limit(devices, argon2Tuning.best);
    const argon2Cpu = CpuMeter.between(argon2Cpu0, await meter.sample(), argon2.cpuSeconds);
    say(`argon2id: ${devices} in ${(argon2.ms / 1000).toFixed(2)} s at ${argon2.concurrency} in flight`);
    let combined: { ms: number; cpu: CpuSplit } | undefined;
    if (!values["no-combined-limit"]) {
      const both = planWrites(writeMix, targets, "combined");
      const cpu0 = await meter.sample();
      const [, hashing] = await Promise.all([
        runWrites(limitKubeconfig, both.tasks, tuning.best),
        argon2Limit(devices, argon2.concurrency),
      ]);
      const cpu = CpuMeter.between(cpu0, await meter.sample(), hashing.cpuSeconds);
      combined = { ms: cpu.wallSeconds * 1000, cpu };
    }
    const limitMs = Math.max(writesMs, argon2.ms);

    // 6. The stricter limit, independent of the operator's choices: what a device needs at least
    // (its Secret, one status write, its share of one shard write per batch window), and the
    // hashing, at once on the same cores.
    const shardCount = shardList.items.length;
    const windows = Math.ceil(argon2.ms / defaults.passdbBatchWindowMs);
    const strictMix = {
      "create secrets": devices,
      "patch maildevices/status": devices,
      "update secrets(passdb)": Math.min(devices, shardCount * windows),
    };
    const strictPlan = planWrites(strictMix, targets, "strict");
    const strictCpu0 = await meter.sample();
    const [, strictHashing] = await Promise.all([
      runWrites(limitKubeconfig, strictPlan.tasks, tuning.best),
      argon2Limit(devices, argon2.concurrency),
    ]);
    const strictCpu = CpuMeter.between(strictCpu0, await meter.sample(), strictHashing.cpuSeconds);
    say(
      `strict limit: ${strictPlan.tasks.length} writes and ${devices} hashes at once in ${strictCpu.wallSeconds.toFixed(1)} s`,
    );

    const report: Omit<BenchReport, "targets"> = {
      version: 1,
      startedAt,
      params: {
        devices,
        addresses,
        rotations,
        idleSeconds,
        operator: [
          ...Object.entries(operatorEnv).map(([name, value]) => `${name}="${value}"`),
          "node",
          ...nodeArgs,
          relative(process.cwd(), script),
          ...operatorArgs,
        ].join(" "),
        commit,
      },
      machine: {
        cpu: cpus()[0]?.model ?? "unknown",
        cores: cpus().length,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        kernel: release(),
        node: process.version,
        kubernetes: await plane.serverVersion(),
        loadAverage,
      },
      convergence: {
        ms: convergenceMs,
        applyMs,
        cpu: convergenceCpu,
        timeline,
        requests: counts(untilConverged),
        writes: writesOf(untilConverged).length,
        databaseWrites: dbWrites(untilConverged),
        untilQuiet: {
          ms: quietAt - t0,
          requests: counts(untilQuiet),
          writes: writesOf(untilQuiet).length,
          databaseWrites: dbWrites(untilQuiet),
        },
      },
      limit: {
        writeMix,
        notReplayed: plan.skipped,
        writes: plan.tasks.length,
        auditedWrites,
        concurrency: tuning.best,
        tuning: tuning.curve,
        writesMs,
        writesCpu,
        argon2: {
          ms: argon2.ms,
          count: argon2.count,
          concurrency: argon2.concurrency,
          tuning: argon2Tuning.curve,
          cpu: argon2Cpu,
        },
        ms: limitMs,
        ratio: convergenceMs / limitMs,
        combinedMs: combined?.ms,
        combinedCpu: combined?.cpu,
        combinedRatio: combined === undefined ? undefined : convergenceMs / combined.ms,
        strict: {
          writeMix: strictMix,
          ms: strictCpu.wallSeconds * 1000,
          cpu: strictCpu,
          ratio: convergenceMs / (strictCpu.wallSeconds * 1000),
        },
      },
      rotation: {
        count: rotations,
        method: "API merge patch, as kubectl annotate sends",
        p50Ms: percentile(latencies, 50),
        p95Ms: percentile(latencies, 95),
        p99Ms: percentile(latencies, 99),
        maxMs: Math.max(...latencies),
        meanMs: latencies.reduce((a, b) => a + b, 0) / latencies.length,
        requests: counts(rotationRequests),
        writesPerRotation: writesOf(rotationRequests).length / rotations,
      },
      idle: {
        seconds: idleSeconds,
        requests: counts(idleRequests),
        writes: writesOf(idleRequests).length,
        cpuSeconds: idleCpu,
      },
      restart: {
        shutdownMs: stopped.ms,
        shutdownWrites: writesOf(shutdownRequests).length,
        syncedMs: syncedAt - second.startedAt,
        idleMs: idleAt - second.startedAt,
        requests: counts(restartRequests),
        writes: writesOf(restartRequests).length,
        stillConverged,
        cpuSeconds: restartCpu,
      },
      reconciles: {
        convergence: reconcilesBetween(reconciles0, reconcilesConverged),
        rotation: reconcilesBetween(reconcilesConverged, reconcilesRotated),
        idle: reconcilesIdle,
        restart: reconcilesRestart,
      },
      memory: {
        rssAtStartMiB: startMemory.rssMiB,
        peakRssMiB: memory.peakRssMiB,
        rssAfterIdleMiB: memory.rssMiB,
        fileAfterIdleMiB: memory.fileMiB,
        restartPeakRssMiB: restartMemory.peakRssMiB,
        heapAfterIdle: heap,
        restartHeap,
      },
      operatorWarnings: {
        count: first.warnings.length + second.warnings.length,
        first: [...first.warnings, ...second.warnings].slice(0, 5),
      },
    };
    report.limit.workRatio = workRatio(report);
    const full: BenchReport = { ...report, targets: evaluateTargets(report) };
    await writeFile(out, JSON.stringify(full, null, 2) + "\n");
    process.stdout.write("\n" + formatReport(full) + "\n");
    say(`report written to ${out}`);
    if (full.operatorWarnings.count > 0)
      say(
        `the operator logged ${full.operatorWarnings.count} warnings, e.g.:\n${full.operatorWarnings.first.join("\n")}`,
      );
  } finally {
    // The API server's log (watch terminations, throttling) is worth keeping; the rest goes.
    await copyFile(
      join(plane.dir, "kube-apiserver.log"),
      join(benchDir, `kube-apiserver-${devices}.log`),
    ).catch(() => {});
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  }
  if (!values["no-mail-server"]) await mailServer();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);

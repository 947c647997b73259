// The mail-server side of `npm run bench` (issue 13), on its own control plane: the operator as a
// process, Debian's Dovecot with the shipped Lua passdb, and `devicepass passdb-sync` as a process
// writing the folder Dovecot reads. Measures how soon after a shard write the old password is
// refused at the IMAP port, how long a login takes by devices per address with and without caches,
// and the status writes per hour that last-used stamps of many devices cause.
import { watch } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ControlPlane } from "../harness/control-plane.ts";
import { MailServer } from "../harness/dovecot.ts";
import { kubectlFor } from "../harness/kubectl.ts";
import { imapLogin, type Endpoint } from "../harness/mail-clients.ts";
import { OperatorProcess } from "../harness/operator-process.ts";
import { pool } from "../harness/pool.ts";
import { PassdbSyncProcess } from "../harness/passdb-sync.ts";
import { apiVersion, kinds, rotateAnnotation } from "../src/api/names.ts";
import { defaultMaxDevicesPerAddress } from "../src/api/schemas.ts";
import { KubeClient, type WatchEvent } from "../src/kube/client.ts";
import { named, resources } from "../src/kube/resources.ts";
import { addressKey } from "../src/passdb/format.ts";
import { defaultSyncReportName } from "../src/passdb/sync-report.ts";
import { stampFileOf } from "../src/passdb-sync/stamps.ts";
import { percentile } from "./report.ts";
import { createMailDomain, createNamespace, createWorkload, deviceName } from "./workload.ts";

export interface MailServerBenchOptions {
  /** Rotations timed per Dovecot configuration. */
  rotations: number;
  /** Devices per address in the login table. */
  deviceCounts: number[];
  /** Logins sampled per table cell. */
  logins: number;
  /** MailDevices whose logins are stamped for the write rate. */
  lastUsedDevices: number;
  /** Length of the stamped period, in the bench's scaled seconds (see timeScale). */
  lastUsedSeconds: number;
  say: (line: string) => void;
}

/**
 * The last-used run is the real one sped up ten times: precision 300 s → 30 s, a login a minute
 * → every 6 s, Dovecot's stamp interval 60 s → 6 s, passdb-sync's stamp scan 10 s → 1 s. Writes per
 * real hour are the writes per scaled hour divided by this.
 */
export const timeScale = 10;

interface Quantiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}
const quantiles = (values: number[]): Quantiles => ({
  p50: Math.round(percentile(values, 50)),
  p95: Math.round(percentile(values, 95)),
  p99: Math.round(percentile(values, 99)),
  max: Math.round(Math.max(...values)),
});

export interface LoginRow {
  devices: number;
  /** The very first login of the last device after Dovecot started (nothing remembered yet). */
  coldLastMs: number;
  first: { p50: number; p95: number };
  last: { p50: number; p95: number };
  wrong: { p50: number; p95: number };
}

export interface DovecotConfigResult {
  name: string;
  description: string;
  rotations?: {
    count: number;
    /** Shard Secret change seen by the bench's watch → the first refused login's start. */
    refusedAfterShardMs: Quantiles;
    /** Shard Secret change → passdb-sync's rename of the file (inotify). */
    fileAfterShardMs: Quantiles;
    /** The rotate patch sent → the first refused login's start. */
    refusedAfterPatchMs: Quantiles;
    /** Polling resolution: p50 of an accepted login with the old password before the refusal. */
    resolutionMs: number;
  };
  logins: LoginRow[];
}

export interface MailServerReport {
  configs: DovecotConfigResult[];
  lastUsed: {
    devices: number;
    scaledSeconds: number;
    timeScale: number;
    precisionSeconds: number;
    loginEverySeconds: number;
    /** status.lastUsedAt writes per real hour in the steady state (each device after its first write). */
    writesPerHour: number;
    /** The ideal: one write per device per precision interval. */
    boundPerHour: number;
    firstWrites: number;
    steadyWrites: number;
    /** The fewest seconds (scaled back to real) between two values written for one device. */
    minGapSeconds: number;
    reportWritesPerHour: number;
    devicesWithLastUsed: number;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mailNs = "bench-mail";
const passdbNs = "bench-passdb";
const shards = 8;
const domain = "bench.example.com";

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface SecretJson {
  metadata: { name: string; resourceVersion?: string };
  data?: Record<string, string>;
}

const decode = (v: string | undefined) => (v === undefined ? undefined : Buffer.from(v, "base64").toString());

/** The objects of one bench address with `n` devices, named `<name>-000`…, IMAP allowed for all. */
async function createAddress(client: KubeClient, name: string, n: number): Promise<void> {
  await client.create(
    { ...resources.mailAddresses, namespace: mailNs },
    { apiVersion, kind: kinds.mailAddress.kind, metadata: { name }, spec: { address: `${name}@${domain}` } },
  );
  await pool(
    Array.from({ length: n }, (_, i) => i),
    8,
    (i) =>
      client.create(
        { ...resources.mailDevices, namespace: mailNs },
        {
          apiVersion,
          kind: kinds.mailDevice.kind,
          metadata: { name: `${name}-${String(i).padStart(3, "0")}` },
          spec: { address: name, displayName: `Device ${i}` },
        },
      ),
  );
}

/** The current password of device `name` (read from its Secret, as a user would). */
async function password(client: KubeClient, name: string): Promise<string> {
  const secret = await client.get<SecretJson>(named(resources.secrets, mailNs, `${name}-mail-credentials`));
  const value = decode(secret.data?.password);
  if (!value) throw new Error(`no password in ${name}'s Secret`);
  return value;
}

/** Times of changes to one key of the shard Secrets (from a watch: the bench sees the write). */
class ShardWatch {
  readonly changes: number[] = [];
  private readonly values = new Map<string, string | undefined>();
  private readonly abort = new AbortController();
  private readonly running: Promise<void>;

  constructor(client: KubeClient, key: string) {
    this.running = (async () => {
      const ref = { ...resources.secrets, namespace: passdbNs };
      const list = await client.list<SecretJson>(ref);
      for (const s of list.items) this.values.set(s.metadata.name, s.data?.[key]);
      await client
        .watch<SecretJson>(
          ref,
          { resourceVersion: list.metadata.resourceVersion },
          (event: WatchEvent<SecretJson>) => {
            if (event.type !== "ADDED" && event.type !== "MODIFIED") return;
            const value = event.object.data?.[key];
            if (this.values.get(event.object.metadata.name) !== value) this.changes.push(performance.now());
            this.values.set(event.object.metadata.name, value);
          },
          this.abort.signal,
        )
        .catch(() => {});
    })();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }
}

async function measureRotations(
  client: KubeClient,
  imap: Endpoint,
  sync: PassdbSyncProcess,
  count: number,
  say: (line: string) => void,
): Promise<NonNullable<DovecotConfigResult["rotations"]>> {
  const user = `rot@${domain}`;
  const key = addressKey(user);
  const shardWatch = new ShardWatch(client, key);
  const fileChanges: number[] = [];
  const watcher = watch(sync.passdbDir, (_event, file) => {
    if (file === key) fileChanges.push(performance.now());
  });
  const refusedAfterShard: number[] = [];
  const fileAfterShard: number[] = [];
  const refusedAfterPatch: number[] = [];
  const resolutions: number[] = [];
  try {
    await sleep(500); // the watch is established
    for (let i = 0; i < count; i++) {
      const old = await password(client, "rot-000");
      await until("the current password to be accepted", async () =>
        (await imapLogin(imap, user, old)).ok ? true : undefined,
      );
      const patchedAt = performance.now();
      await client.mergePatch(
        named(resources.mailDevices, mailNs, "rot-000"),
        { metadata: { annotations: { [rotateAnnotation]: `bench-${Date.now()}-${i}` } } },
        "kubectl-annotate",
      );
      let resolution = 0;
      const refusedAt = await until("the old password to be refused", async () => {
        const attempt = performance.now();
        const result = await imapLogin(imap, user, old);
        if (result.ok) {
          resolution = result.ms;
          return undefined;
        }
        if (!/\[AUTHENTICATIONFAILED\]/.test(result.response))
          throw new Error(`unexpected answer: ${result.response}`);
        return attempt;
      });
      const shardAt = await until("the shard write to be seen", () =>
        Promise.resolve(shardWatch.changes.find((t) => t > patchedAt)),
      );
      const fileAt = await until("passdb-sync to rename the file", () =>
        Promise.resolve(fileChanges.find((t) => t > patchedAt)),
      );
      // A login that started before the shard event arrived but was refused: the watch lagged.
      refusedAfterShard.push(Math.max(0, refusedAt - shardAt));
      fileAfterShard.push(fileAt - shardAt);
      refusedAfterPatch.push(refusedAt - patchedAt);
      resolutions.push(resolution);
      if ((i + 1) % 10 === 0 || i + 1 === count)
        say(
          `rotation ${i + 1}/${count}: refused ${Math.round(refusedAt - shardAt)} ms after the shard write`,
        );
    }
  } finally {
    watcher.close();
    await shardWatch.stop();
  }
  return {
    count,
    refusedAfterShardMs: quantiles(refusedAfterShard),
    fileAfterShardMs: quantiles(fileAfterShard),
    refusedAfterPatchMs: quantiles(refusedAfterPatch),
    resolutionMs: Math.round(
      percentile(
        resolutions.filter((r) => r > 0),
        50,
      ) || 0,
    ),
  };
}

async function measureLogins(
  client: KubeClient,
  imap: Endpoint,
  deviceCounts: number[],
  logins: number,
): Promise<LoginRow[]> {
  const rows: LoginRow[] = [];
  for (const n of deviceCounts) {
    const user = `scale-${n}@${domain}`;
    const first = await password(client, `scale-${n}-000`);
    const last = await password(client, `scale-${n}-${String(n - 1).padStart(3, "0")}`);
    const cold = await imapLogin(imap, user, last);
    if (!cold.ok) throw new Error(`the last device of ${user} was refused: ${cold.response}`);
    const sample = async (pass: string, count: number, accepted: boolean) => {
      const times: number[] = [];
      for (let i = 0; i < count; i++) {
        const result = await imapLogin(imap, user, pass);
        if (result.ok !== accepted) throw new Error(`unexpected answer for ${user}: ${result.response}`);
        times.push(result.ms);
      }
      return { p50: Math.round(percentile(times, 50)), p95: Math.round(percentile(times, 95)) };
    };
    await imapLogin(imap, user, first); // each measured password logs in once first: warm, as a reconnecting client
    rows.push({
      devices: n,
      coldLastMs: Math.round(cold.ms),
      first: await sample(first, logins, true),
      last: await sample(last, logins, true),
      wrong: await sample(`${first}-wrong`, Math.max(3, Math.ceil(logins / 4)), false),
    });
  }
  return rows;
}

/** Writes the stamps the Lua passdb would for `devices` each logging in every `everyMs`. */
async function stampLogins(
  stampDir: string,
  devices: string[],
  everyMs: number,
  untilMs: number,
): Promise<void> {
  const next = devices.map((_, i) => performance.now() + (i / devices.length) * everyMs);
  while (performance.now() < untilMs) {
    const now = performance.now();
    const due: number[] = [];
    for (let i = 0; i < devices.length; i++) if (next[i]! <= now) due.push(i);
    await pool(due, 16, async (i) => {
      await writeFile(
        join(stampDir, stampFileOf(`${mailNs}/${devices[i]!}`)),
        String(Math.floor(Date.now() / 1000)),
      );
      next[i]! += everyMs;
    });
    await sleep(50);
  }
}

interface DeviceJson {
  metadata: { name: string };
  status?: { lastUsedAt?: string };
}

async function measureLastUsed(
  client: KubeClient,
  sync: PassdbSyncProcess,
  options: MailServerBenchOptions,
  precisionSeconds: number,
): Promise<MailServerReport["lastUsed"]> {
  const devices = Array.from({ length: options.lastUsedDevices }, (_, i) => deviceName(i));
  const writes: { at: number; device: string; value: number }[] = [];
  const lastValue = new Map<string, string | undefined>();
  let reportWrites = 0;
  const abort = new AbortController();
  const watchDevices = (async () => {
    const ref = { ...resources.mailDevices, namespace: mailNs };
    const list = await client.list<DeviceJson>(ref);
    for (const d of list.items) lastValue.set(d.metadata.name, d.status?.lastUsedAt);
    await client
      .watch<DeviceJson>(
        ref,
        { resourceVersion: list.metadata.resourceVersion },
        (event: WatchEvent<DeviceJson>) => {
          if (event.type !== "MODIFIED") return;
          const value = event.object.status?.lastUsedAt;
          if (value !== undefined && value !== lastValue.get(event.object.metadata.name))
            writes.push({
              at: performance.now(),
              device: event.object.metadata.name,
              value: Date.parse(value),
            });
          lastValue.set(event.object.metadata.name, value);
        },
        abort.signal,
      )
      .catch(() => {});
  })();
  const watchReport = (async () => {
    const ref = { ...resources.configMaps, namespace: passdbNs };
    const list = await client.list<{ metadata: { name: string } }>(ref);
    await client
      .watch<{ metadata: { name: string } }>(
        ref,
        { resourceVersion: list.metadata.resourceVersion },
        (event) => {
          if (event.type === "MODIFIED" && event.object.metadata.name === defaultSyncReportName)
            reportWrites++;
        },
        abort.signal,
      )
      .catch(() => {});
  })();
  await sleep(500);
  const started = performance.now();
  const loginEveryMs = (60 * 1000) / timeScale;
  await stampLogins(sync.stampDir, devices, loginEveryMs, started + options.lastUsedSeconds * 1000);
  const ended = performance.now();
  const reportWritesInRun = reportWrites;
  await sleep(3000); // the last report and its writes arrive
  abort.abort();
  await Promise.all([watchDevices, watchReport]);

  // Steady state: each device from its first write on (the first is the catch-up of a new
  // device); the rate is the writes after the first over the time after it, summed over devices.
  const byDevice = new Map<string, { at: number; value: number }[]>();
  for (const w of writes.filter((w) => w.at <= ended))
    byDevice.set(w.device, [...(byDevice.get(w.device) ?? []), w]);
  let steadyWrites = 0;
  let steadySeconds = 0;
  let minGap = Number.POSITIVE_INFINITY;
  for (const list of byDevice.values()) {
    steadyWrites += list.length - 1;
    steadySeconds += (ended - list[0]!.at) / 1000;
    for (let i = 1; i < list.length; i++)
      minGap = Math.min(minGap, (list[i]!.value - list[i - 1]!.value) / 1000);
  }
  return {
    devices: devices.length,
    scaledSeconds: Math.round(options.lastUsedSeconds),
    timeScale,
    precisionSeconds: precisionSeconds * timeScale,
    loginEverySeconds: 60,
    // Per device and scaled second, times the devices, per real hour.
    writesPerHour: Math.round(
      ((steadyWrites / Math.max(1, steadySeconds)) * devices.length * 3600) / timeScale,
    ),
    boundPerHour: Math.round((devices.length * 3600) / (precisionSeconds * timeScale)),
    firstWrites: byDevice.size,
    steadyWrites,
    minGapSeconds: Number.isFinite(minGap) ? Math.round(minGap * timeScale) : 0,
    reportWritesPerHour: Math.round(((reportWritesInRun / ((ended - started) / 1000)) * 3600) / timeScale),
    devicesWithLastUsed: [...lastValue.values()].filter((v) => v !== undefined).length,
  };
}

interface DovecotConfig {
  name: string;
  description: string;
  rotations: boolean;
  verifiedCacheSize: number;
  authCache?: { size: string; ttl: string; cacheKey: string };
}

const dovecotConfigs: DovecotConfig[] = [
  {
    name: "no cache",
    description: "every login verifies argon2id against each device until one matches (the first release)",
    rotations: false,
    verifiedCacheSize: 0,
  },
  {
    name: "worker cache (shipped)",
    description:
      "each auth worker remembers the passwords it verified, by hash; the file is read at every login",
    rotations: true,
    verifiedCacheSize: 4096,
  },
  {
    name: "worker cache + Dovecot auth cache",
    description:
      "also auth_cache_size = 10M, auth_cache_ttl = 60 s, cache_key = %u%s%w, flushed by passdb-sync after each file change",
    rotations: true,
    verifiedCacheSize: 4096,
    authCache: { size: "10M", ttl: "60 s", cacheKey: "%u%s%w" },
  },
];

export async function runMailServerBench(options: MailServerBenchOptions): Promise<MailServerReport> {
  const { say } = options;
  say("mail server: starting a control plane");
  const plane = await ControlPlane.start({ controllerManager: false, log: say });
  const stops: (() => Promise<unknown>)[] = [() => plane.stop()];
  const precisionSeconds = 300 / timeScale;
  try {
    const kubectl = kubectlFor(plane.binaries.kubectl, plane.kubeconfigPath);
    const crds = join(import.meta.dirname, "..", "..", "crds");
    await kubectl.ok(["apply", "--server-side", "-f", crds]);
    await kubectl.ok(["wait", "--for=condition=Established", "--timeout=60s", "-f", crds]);
    const client = await KubeClient.fromKubeconfig(plane.kubeconfigPath, "devicepass-bench");
    stops.unshift(() => client.close());
    await createNamespace(client, mailNs);
    await createNamespace(client, passdbNs);
    await createMailDomain(client, mailNs);
    const operator = await OperatorProcess.startRunning({ args: [
      "--kubeconfig", plane.kubeconfigPath,
      "--namespace", mailNs,
      "--passdb-namespace", passdbNs,
      "--passdb-shards", String(shards),
      "--last-used-precision-seconds", String(precisionSeconds),
    ] }); // prettier-ignore
    stops.unshift(() => operator.dispose());

    say(
      `mail server: ${options.lastUsedDevices} devices for the last-used run, and the login table's addresses`,
    );
    await createWorkload(client, mailNs, {
      devices: options.lastUsedDevices,
      // As many devices per address as the default device limit lets become Ready.
      addresses: Math.ceil(options.lastUsedDevices / defaultMaxDevicesPerAddress),
    });
    await createAddress(client, "rot", 3);
    for (const n of options.deviceCounts) await createAddress(client, `scale-${n}`, n);
    // Polled with the client: kubectl wait gave up on 1,000 devices on a busy machine.
    const total = options.lastUsedDevices + 3 + options.deviceCounts.reduce((a, b) => a + b, 0);
    await until(
      "every device to be Ready",
      async () => {
        const list = await client.list<{ status?: { conditions?: { type: string; status: string }[] } }>({
          ...resources.mailDevices,
          namespace: mailNs,
        });
        const ready = list.items.filter((d) =>
          d.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        ).length;
        return ready === total ? true : (await sleep(1000), undefined);
      },
      1_800_000,
    );

    const configs: DovecotConfigResult[] = [];
    let lastUsed: MailServerReport["lastUsed"] | undefined;
    for (const config of dovecotConfigs) {
      say(`mail server: Dovecot with ${config.name}`);
      const folders = await PassdbSyncProcess.folders();
      const mail = await MailServer.start({
        passdbDir: folders.passdbDir,
        verifiedCacheSize: config.verifiedCacheSize,
        ...(config.authCache ? { authCache: config.authCache } : {}),
      });
      const sync = await PassdbSyncProcess.start({
        kubeconfig: plane.kubeconfigPath,
        namespace: passdbNs,
        shards,
        dirs: folders,
        stamps: true,
        doveadm: { url: mail.doveadmUrl, apiKeyFile: mail.doveadmApiKeyFile },
        args: ["--log-level", "info", "--stamp-scan-seconds", String(10 / timeScale)],
      });
      try {
        const imap = { host: mail.host, port: mail.ports.imap };
        const result: DovecotConfigResult = {
          name: config.name,
          description: config.description,
          logins: [],
        };
        result.logins = await measureLogins(client, imap, options.deviceCounts, options.logins);
        say(`mail server: ${config.name}: ${JSON.stringify(result.logins)}`);
        if (config.rotations && options.rotations > 0)
          result.rotations = await measureRotations(client, imap, sync, options.rotations, say);
        configs.push(result);
        if (config.name === "worker cache (shipped)" && options.lastUsedDevices > 0) {
          say(
            `mail server: last-used stamps of ${options.lastUsedDevices} devices for ${options.lastUsedSeconds} s`,
          );
          lastUsed = await measureLastUsed(client, sync, options, precisionSeconds);
        }
      } finally {
        await sync.stop();
        await mail.stop();
      }
    }
    if (!lastUsed) throw new Error("the last-used run did not happen");
    return { configs, lastUsed };
  } finally {
    for (const stop of stops) await stop().catch(() => {});
  }
}

/** The Markdown tables of a mail-server report. */
export function formatMailServerReport(r: MailServerReport): string {
  const lines: string[] = [];
  const q = (x: Quantiles) => `${x.p50} / ${x.p95} / ${x.p99} / ${x.max} ms`;
  lines.push("### Mail server: revocation at the IMAP port (through passdb-sync)", "");
  lines.push(
    "| Dovecot | rotations | shard write → old password refused (p50 / p95 / p99 / max) | shard write → file replaced | rotate patch → refused | polling resolution |",
  );
  lines.push("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const c of r.configs)
    if (c.rotations)
      lines.push(
        `| ${c.name} | ${c.rotations.count} | ${q(c.rotations.refusedAfterShardMs)} | ${q(c.rotations.fileAfterShardMs)} | ${q(c.rotations.refusedAfterPatchMs)} | ${c.rotations.resolutionMs} ms |`,
      );
  lines.push("", "### Mail server: IMAP login (connect → tagged answer, ms) by devices per address", "");
  lines.push(
    "| Dovecot | devices | last device, first login | first device p50 / p95 | last device p50 / p95 | wrong password p50 / p95 |",
  );
  lines.push("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const c of r.configs)
    for (const row of c.logins)
      lines.push(
        `| ${c.name} | ${row.devices} | ${row.coldLastMs} | ${row.first.p50} / ${row.first.p95} | ${row.last.p50} / ${row.last.p95} | ${row.wrong.p50} / ${row.wrong.p95} |`,
      );
  lines.push("");
  for (const c of r.configs) lines.push(`- ${c.name}: ${c.description}.`);
  const u = r.lastUsed;
  lines.push("", "### Mail server: status.lastUsedAt writes", "");
  lines.push("| Measure | Value |", "| --- | ---: |");
  lines.push(
    `| Devices, each logging in every ${u.loginEverySeconds} s | ${u.devices.toLocaleString("en-US")} |`,
  );
  lines.push(`| Precision | ${u.precisionSeconds} s |`);
  lines.push(
    `| status.lastUsedAt writes per hour (steady state) | ${u.writesPerHour.toLocaleString("en-US")} |`,
  );
  lines.push(`| Bound: one per device per precision interval | ${u.boundPerHour.toLocaleString("en-US")} |`);
  lines.push(`| Fewest seconds between two values written for one device | ${u.minGapSeconds} s |`);
  lines.push(
    `| Report ConfigMap writes per hour (one Dovecot pod) | ${u.reportWritesPerHour.toLocaleString("en-US")} |`,
  );
  lines.push(`| Devices with lastUsedAt at the end | ${u.devicesWithLastUsed.toLocaleString("en-US")} |`);
  lines.push(
    "",
    `(Run ${u.timeScale}× faster than real time for ${u.scaledSeconds} s: every interval divided by ${u.timeScale}, the counts per hour scaled back; ${u.firstWrites} first writes, then ${u.steadyWrites} more. Stamps written as the Lua passdb writes them.)`,
  );
  return lines.join("\n") + "\n";
}

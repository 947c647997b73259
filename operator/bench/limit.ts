// The limit the operator is measured against, on the same API server in the same run: a minimal
// client replaying the very mix of writes the operator made (same verbs, resources, sizes) as fast
// as the server takes them, with the concurrency tuned; and argon2id over N passwords on all cores.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Agent } from "node:http";
import { apiVersion, kinds, labels, secretAnnotations } from "../src/api/names.ts";
import { createPool, send } from "../src/http-client.ts";
import { KubeClient, resourcePath } from "../src/kube/client.ts";
import { loadClusterConnection } from "../src/kube/kubeconfig.ts";
import { named, resources } from "../src/kube/resources.ts";
import { ownersKey } from "../src/passdb/format.ts";
import type { Argon2LimitResult } from "./argon2-limit.ts";
import { pool } from "../harness/pool.ts";
import { addressName, createNamespace, mailAddress, mailDevice } from "./workload.ts";

const run = promisify(execFile);

/** Just enough of a Kubernetes client: one pool of `connections` keep-alive connections. */
export class RawClient {
  private readonly pool: Agent;
  private readonly server: string;

  private constructor(pool: Agent, server: string) {
    this.pool = pool;
    this.server = server;
  }

  static async create(kubeconfig: string, connections: number): Promise<RawClient> {
    const connection = await loadClusterConnection(kubeconfig);
    const pool = createPool(connection.server, {
      ca: connection.ca,
      cert: connection.cert,
      key: connection.key,
      connections,
    });
    return new RawClient(pool, connection.server);
  }

  /** Sends one request; throws unless the server answers 2xx. */
  async send(
    method: "POST" | "PUT" | "PATCH",
    path: string,
    body: unknown,
    contentType = "application/json",
  ) {
    const res = await send(this.server + path, {
      method,
      pool: this.pool,
      headers: { "content-type": contentType, accept: "application/json" },
      body: JSON.stringify(body),
      headersTimeoutMs: 60_000,
      bodyTimeoutMs: 60_000,
    });
    const text = await res.text();
    if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`);
  }

  close(): Promise<void> {
    this.pool.destroy();
    return Promise.resolve();
  }
}

const fieldManagerQuery = (manager: string) => `?fieldManager=${manager}&force=true`;
const applyType = "application/apply-patch+yaml";
const mergeType = "application/merge-patch+json";

/** A fake argon2id hash of the real length, so bodies weigh what the operator's weigh. */
function fakeHash(): string {
  const b64 = (n: number) => randomBytes(n).toString("base64").replace(/=+$/, "");
  return `{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$${b64(16)}$${b64(32)}`;
}
const b64 = (s: string) => Buffer.from(s).toString("base64");

export interface LimitTargets {
  namespace: string;
  /** Namespace of the copies of the database's shard Secrets. */
  passdbNamespace: string;
  devices: { name: string; uid: string }[];
  addresses: string[];
  /** A MailDomain of their own. */
  domain: string;
  /** Names of pre-created credential-like Secrets (for `patch secrets`). */
  secrets: string[];
  /** Names of the shard copies, and the data (base64) each carries at the end. */
  shards: { name: string; data: Record<string, string> }[];
}

type Task = (client: RawClient) => Promise<void>;

/**
 * A shard's data as it stood a `fraction` of the way through: the database grows as devices are
 * published, so the k-th of n writes carries about k/n of the final files (and the owners file).
 * Writing the final content every time would overstate the work, tenfold at 50,000 devices.
 */
export function grownShardData(data: Record<string, string>, fraction: number): Record<string, string> {
  const files = Object.keys(data).filter((key) => key !== ownersKey);
  const kept = files.slice(0, Math.ceil(files.length * Math.min(1, fraction)));
  return Object.fromEntries(
    [...kept, ...(ownersKey in data ? [ownersKey] : [])].map((key) => [key, data[key]!]),
  );
}

/**
 * One writer per `verb resource` the operator used (resource as countByVerbAndResource names it);
 * a mix entry without a writer is reported, not replayed. `round` keeps created names unique.
 */
function writers(
  t: LimitTargets,
  round: string,
): Record<string, (i: number, seq: number, of: number) => Task> {
  const device = (i: number) => t.devices[i % t.devices.length]!;
  const address = (i: number) => t.addresses[i % t.addresses.length]!;
  const shard = (i: number) => t.shards[i % t.shards.length]!;
  const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const credentialSecret = (name: string, d: { name: string; uid: string }) => ({
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/basic-auth",
    metadata: {
      name,
      namespace: t.namespace,
      labels: {
        [labels.managedBy]: "devicepass-bench",
        [labels.component]: "credentials",
        [labels.address]: "addr-000",
        [labels.device]: d.name,
      },
      annotations: {
        [secretAnnotations.passwordHash]: fakeHash(),
        [secretAnnotations.passwordDigest]: randomBytes(32).toString("hex"),
        [secretAnnotations.generatedAt]: now(),
        [secretAnnotations.rotationCount]: "0",
      },
      ownerReferences: [
        {
          apiVersion,
          kind: kinds.mailDevice.kind,
          name: d.name,
          uid: d.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    data: {
      username: b64("user-000@bench.example.com"),
      password: b64(randomBytes(18).toString("base64")),
      "imap-host": b64("imap.bench.example.com"),
      "imap-port": b64("993"),
      "imap-security": b64("SSL/TLS"),
      "smtp-host": b64("smtp.bench.example.com"),
      "smtp-port": b64("587"),
      "smtp-security": b64("STARTTLS"),
    },
  });
  const shardSecret = (name: string, data: Record<string, string>, seq: number) => ({
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: {
      name,
      namespace: t.passdbNamespace,
      labels: { [labels.managedBy]: "devicepass-bench", [labels.component]: "passdb" },
    },
    // A changed key in each write, so that no write is a no-op the server may skip.
    data: { ...data, "bench-seq": b64(String(seq)) },
  });
  const condition = (seq: number) => ({
    type: "Ready",
    status: seq % 2 ? "True" : "False",
    reason: seq % 2 ? "CredentialsReady" : "Publishing",
    message: `The mail server accepts the password in Secret bench-${seq}-mail-credentials.`,
    observedGeneration: 1,
    lastTransitionTime: now(),
  });
  const ns = t.namespace;
  return {
    "create secrets": (i) => (c) =>
      c.send(
        "POST",
        resourcePath({ ...resources.secrets, namespace: ns }),
        credentialSecret(`new-${round}-${i}`, device(i)),
      ),
    "patch secrets": (i, seq) => (c) => {
      const body = credentialSecret(t.secrets[i % t.secrets.length]!, device(i));
      body.metadata.annotations[secretAnnotations.rotationCount] = String(seq);
      return c.send(
        "PATCH",
        resourcePath(named(resources.secrets, ns, body.metadata.name)) +
          fieldManagerQuery("devicepass-maildevice"),
        body,
        applyType,
      );
    },
    "create secrets(passdb)": (i, seq, of) => (c) =>
      c.send(
        "POST",
        resourcePath({ ...resources.secrets, namespace: t.passdbNamespace }),
        shardSecret(`new-${round}-${i}`, grownShardData(shard(i).data, (i + 1) / of), seq),
      ),
    "update secrets(passdb)": (i, seq, of) => (c) =>
      c.send(
        "PUT",
        resourcePath(named(resources.secrets, t.passdbNamespace, shard(i).name)),
        shardSecret(shard(i).name, grownShardData(shard(i).data, (i + 1) / of), seq),
      ),
    "patch secrets(passdb)": (i, seq, of) => (c) =>
      c.send(
        "PATCH",
        resourcePath(named(resources.secrets, t.passdbNamespace, shard(i).name)) +
          fieldManagerQuery("devicepass-passdb"),
        shardSecret(shard(i).name, grownShardData(shard(i).data, (i + 1) / of), seq),
        applyType,
      ),
    "patch maildevices": (i, seq) => (c) =>
      c.send(
        "PATCH",
        resourcePath(named(resources.mailDevices, ns, device(i).name)) +
          "?fieldManager=devicepass-maildevice",
        { metadata: { annotations: { "bench.devicepass.io/seq": String(seq) } } },
        mergeType,
      ),
    "patch maildevices/status": (i, seq) => (c) =>
      c.send(
        "PATCH",
        resourcePath(named(resources.mailDevices, ns, device(i).name, "status")) +
          fieldManagerQuery("devicepass-maildevice"),
        {
          apiVersion,
          kind: kinds.mailDevice.kind,
          metadata: { name: device(i).name, namespace: ns },
          status: {
            observedGeneration: 1,
            conditions: [condition(seq)],
            address: "user-000@bench.example.com",
            secretName: `${device(i).name}-mail-credentials`,
            passwordGeneratedAt: now(),
            rotationCount: 0,
          },
        },
        applyType,
      ),
    "patch mailaddresses": (i, seq) => (c) =>
      c.send(
        "PATCH",
        resourcePath(named(resources.mailAddresses, ns, address(i))) + "?fieldManager=devicepass-mailaddress",
        { metadata: { annotations: { "bench.devicepass.io/seq": String(seq) } } },
        mergeType,
      ),
    "patch mailaddresses/status": (i, seq) => (c) =>
      c.send(
        "PATCH",
        resourcePath(named(resources.mailAddresses, ns, address(i), "status")) +
          fieldManagerQuery("devicepass-mailaddress"),
        {
          apiVersion,
          kind: kinds.mailAddress.kind,
          metadata: { name: address(i), namespace: ns },
          status: {
            observedGeneration: 1,
            conditions: [condition(seq)],
            devices: 100,
            readyDevices: seq % 100,
          },
        },
        applyType,
      ),
    "patch maildomains/status": (_i, seq) => (c) =>
      c.send(
        "PATCH",
        resourcePath(named(resources.mailDomains, undefined, t.domain, "status")) +
          fieldManagerQuery("devicepass-maildomain"),
        {
          apiVersion,
          kind: kinds.mailDomain.kind,
          metadata: { name: t.domain },
          status: { observedGeneration: 1, conditions: [condition(seq)], addresses: seq % 100 },
        },
        applyType,
      ),
    "create events": (i) => (c) => {
      const d = device(i);
      const stamp = new Date().toISOString();
      return c.send("POST", resourcePath({ ...resources.events, namespace: ns }), {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: `${d.name}.${round}${i}`, namespace: ns },
        involvedObject: { apiVersion, kind: kinds.mailDevice.kind, name: d.name, namespace: ns, uid: d.uid },
        type: "Normal",
        reason: "Issued",
        message: "A password was generated for the device.",
        source: { component: "devicepass" },
        reportingComponent: "devicepass",
        reportingInstance: "bench",
        firstTimestamp: stamp,
        lastTimestamp: stamp,
        count: 1,
      });
    },
  };
}

/** What each mix entry needs set up beforehand. */
export function needs(mix: Record<string, number>): { secrets: boolean; shards: boolean } {
  const keys = Object.keys(mix);
  return {
    secrets: keys.includes("patch secrets"),
    shards: keys.some((k) => k.endsWith("secrets(passdb)")),
  };
}

export interface WritePlan {
  tasks: Task[];
  /** Mix entries that have no writer (not replayed). */
  skipped: Record<string, number>;
}

let sequence = 0;

/** The tasks of `mix`, interleaved so that every stretch of the run has the same proportions. */
export function planWrites(mix: Record<string, number>, targets: LimitTargets, round: string): WritePlan {
  const byKind = writers(targets, round);
  const keyed: { key: number; task: Task }[] = [];
  const skipped: Record<string, number> = {};
  for (const [kind, count] of Object.entries(mix)) {
    const writer = byKind[kind];
    if (!writer) {
      skipped[kind] = count;
      continue;
    }
    for (let i = 0; i < count; i++)
      keyed.push({ key: (i + 0.5) / count, task: writer(i, ++sequence, count) });
  }
  keyed.sort((a, b) => a.key - b.key);
  return { tasks: keyed.map((k) => k.task), skipped };
}

/** Runs the tasks `concurrency` at a time on a fresh client; resolves with the milliseconds taken. */
export async function runWrites(kubeconfig: string, tasks: Task[], concurrency: number): Promise<number> {
  const client = await RawClient.create(kubeconfig, concurrency);
  try {
    const started = performance.now();
    await pool(tasks, concurrency, (task) => task(client));
    return performance.now() - started;
  } finally {
    await client.close();
  }
}

export interface TuningPoint {
  concurrency: number;
  writes: number;
  ms: number;
  writesPerSecond: number;
}

/**
 * Tries each concurrency on the same-sized sample of the mix and returns the fastest, with the
 * whole curve. The sample is a scaled-down mix, so that every kind of write is in it.
 */
export async function tuneConcurrency(
  kubeconfig: string,
  mix: Record<string, number>,
  targets: LimitTargets,
  sampleSize: number,
  candidates: readonly number[],
): Promise<{ best: number; curve: TuningPoint[] }> {
  const total = Object.values(mix).reduce((a, b) => a + b, 0);
  const scale = Math.min(1, sampleSize / total);
  const sample = Object.fromEntries(
    Object.entries(mix).map(([k, v]) => [k, Math.max(1, Math.round(v * scale))]),
  );
  const curve: TuningPoint[] = [];
  for (const concurrency of candidates) {
    const { tasks } = planWrites(sample, targets, `tune${concurrency}`);
    const ms = await runWrites(kubeconfig, tasks, concurrency);
    curve.push({ concurrency, writes: tasks.length, ms, writesPerSecond: (tasks.length / ms) * 1000 });
  }
  const best = curve.reduce((a, b) => (b.writesPerSecond > a.writesPerSecond ? b : a));
  return { best: best.concurrency, curve };
}

/** argon2id over `count` passwords in a child process with `concurrency` hashes in flight. */
export async function argon2Limit(count: number, concurrency: number): Promise<Argon2LimitResult> {
  const { stdout } = await run(
    process.execPath,
    [
      join(import.meta.dirname, "argon2-limit.ts"),
      "--count",
      String(count),
      "--concurrency",
      String(concurrency),
    ],
    { env: { ...process.env, UV_THREADPOOL_SIZE: String(Math.max(4, concurrency)) }, maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout) as Argon2LimitResult;
}

/** The faster of one hash in flight per core and two per core, tried on `sample` passwords. */
export async function tuneArgon2(
  sample: number,
): Promise<{ best: number; curve: { concurrency: number; ms: number; count: number }[] }> {
  const cores = availableParallelism();
  const curve: { concurrency: number; ms: number; count: number }[] = [];
  for (const concurrency of [cores, cores * 2]) {
    const r = await argon2Limit(sample, concurrency);
    curve.push({ concurrency, ms: r.ms, count: sample });
  }
  return { best: curve.reduce((a, b) => (b.ms < a.ms ? b : a)).concurrency, curve };
}

/**
 * Copies of the operator's objects for the limit client to write to, in namespaces the operator
 * never saw: the addresses and devices (their uids for owner references), credential-like Secrets
 * when the mix patches them, and the database's shards with their final content.
 */
export async function setupLimitTargets(
  admin: KubeClient,
  adminKubeconfig: string,
  {
    namespace,
    passdbNamespace,
    devices,
    addresses,
    mix,
    shardData,
  }: {
    namespace: string;
    passdbNamespace: string;
    devices: number;
    addresses: number;
    mix: Record<string, number>;
    shardData: Record<string, string>[];
  },
): Promise<LimitTargets> {
  await createNamespace(admin, namespace);
  await createNamespace(admin, passdbNamespace);
  await admin.create(resources.mailDomains, {
    apiVersion,
    kind: kinds.mailDomain.kind,
    metadata: { name: "bench-limit.example.com" },
    spec: { namespaces: [namespace] },
  });
  const ns = { namespace };
  await pool(
    Array.from({ length: addresses }, (_, i) => i),
    32,
    (i) => admin.create({ ...resources.mailAddresses, ...ns }, mailAddress(namespace, i)),
  );
  const created = new Array<{ name: string; uid: string }>(devices);
  await pool(
    Array.from({ length: devices }, (_, i) => i),
    32,
    async (i) => {
      const device = await admin.create<{ metadata: { name: string; uid: string } }>(
        { ...resources.mailDevices, ...ns },
        mailDevice(namespace, i, addresses),
      );
      created[i] = { name: device.metadata.name, uid: device.metadata.uid };
    },
  );
  const targets: LimitTargets = {
    namespace,
    passdbNamespace,
    devices: created,
    addresses: Array.from({ length: addresses }, (_, i) => addressName(i)),
    domain: "bench-limit.example.com",
    secrets: [],
    shards: shardData.map((data, i) => ({ name: `shard-${String(i).padStart(2, "0")}`, data })),
  };
  const { secrets, shards } = needs(mix);
  const setup = writers(targets, "setup");
  const client = await RawClient.create(adminKubeconfig, 32);
  try {
    if (secrets) {
      targets.secrets = Array.from({ length: devices }, (_, i) => `new-setup-${i}`);
      await pool(targets.secrets, 32, (_name, i) => setup["create secrets"]!(i, 0, devices)(client));
    }
    if (shards) {
      await pool(targets.shards, 32, (shard, i) =>
        client.send("POST", resourcePath({ ...resources.secrets, namespace: passdbNamespace }), {
          apiVersion: "v1",
          kind: "Secret",
          type: "Opaque",
          metadata: { name: shard.name, namespace: passdbNamespace },
          data: { ...shard.data, "bench-seq": b64(String(i)) },
        }),
      );
    }
  } finally {
    await client.close();
  }
  return targets;
}

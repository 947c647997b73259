// The one invariant every fault test checks after each fault and its recovery, read straight from
// the API server (never the operator's cache): for each address the database accepts exactly the
// passwords of its devices' Secrets, every device is Ready, no Secret or hash is orphaned, and every
// rotate value was acted on exactly once. Also a Secret audit (every password ever written) and
// a scan of the operator's logs for any of those passwords.
import { createHash } from "node:crypto";
import { verify } from "@node-rs/argon2";
import { labels, rotateAnnotation, secretAnnotations } from "../../src/api/names.ts";
import type { KubeClient, WatchEvent } from "../../src/kube/client.ts";
import { ApiError } from "../../src/kube/errors.ts";
import { resources } from "../../src/kube/resources.ts";
import { defaultSealKeySecretName } from "../../src/api/names.ts";
import { loadSealKey } from "../../src/credentials/seal-key-secret.ts";
import { addressKey, ownersKey, parseAddressFile } from "../../src/passdb/format.ts";
import type { FaultCluster, Workload } from "./cluster.ts";

interface Meta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion?: string;
  generation?: number;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[];
}
interface Condition {
  type: string;
  status: string;
  reason?: string;
  observedGeneration?: number;
}
interface Device {
  metadata: Meta;
  spec: { address: string; protocols?: string[]; secretName?: string };
  status?: {
    conditions?: Condition[];
    observedGeneration?: number;
    secretName?: string;
    rotationCount?: number;
    lastRotateValue?: string;
    lastAddressRotateValue?: string;
  };
}
interface Address {
  metadata: Meta;
  spec: { address: string };
  status?: { conditions?: Condition[] };
}
interface Secret {
  metadata: Meta;
  data?: Record<string, string>;
}

export interface InvariantReport {
  ok: boolean;
  violations: string[];
  addresses: number;
  devices: number;
  secrets: number;
  hashes: number;
  /** argon2id verifications that passed (Secret hash and database hash against each password). */
  verified: number;
}

const decode = (v: string | undefined) => (v === undefined ? undefined : Buffer.from(v, "base64").toString());
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");
const argon2Accepts = (hash: string, password: string) =>
  verify(hash.replace(/^\{ARGON2ID\}/, ""), password).catch(() => false);
const ready = (conditions: Condition[] | undefined) =>
  conditions?.find((c) => c.type === "Ready" && c.status === "True");

async function listAll<T>(
  client: KubeClient,
  ref: Parameters<KubeClient["list"]>[0],
  labelSelector?: string,
) {
  return (await client.list<T>(ref, labelSelector ? { labelSelector } : {})).items;
}

/** Checks the invariant once; `violations` says what does not hold (empty: it holds). */
export async function checkInvariant(
  cluster: FaultCluster,
  workload: Workload,
  audit?: SecretAudit,
): Promise<InvariantReport> {
  const { client, namespace, passdbNamespace, passdbShards } = cluster;
  const [addresses, devices, secrets, shards] = await Promise.all([
    listAll<Address>(client, { ...resources.mailAddresses, namespace }),
    listAll<Device>(client, { ...resources.mailDevices, namespace }),
    listAll<Secret>(client, { ...resources.secrets, namespace }),
    listAll<Secret>(
      client,
      { ...resources.secrets, namespace: passdbNamespace },
      `${labels.component}=passdb`,
    ),
  ]);
  const violations: string[] = [];
  const fail = (message: string) => violations.push(message);
  let verified = 0;

  // Addresses: every one the user made is there and Ready.
  const addressByName = new Map(addresses.map((a) => [a.metadata.name, a]));
  for (const [name, expected] of workload.addresses) {
    const a = addressByName.get(name);
    if (!a) fail(`MailAddress ${name} is missing`);
    else if (!ready(a.status?.conditions)) fail(`MailAddress ${name} is not Ready`);
    else if (a.metadata.annotations?.[rotateAnnotation] !== expected.rotate)
      fail(`MailAddress ${name} has rotate ${a.metadata.annotations?.[rotateAnnotation]}`);
  }

  // Devices: exactly the live ones, none stuck in deletion, each Ready with its password.
  const deviceByName = new Map(devices.map((d) => [d.metadata.name, d]));
  for (const d of devices) {
    if (!workload.devices.has(d.metadata.name))
      fail(`MailDevice ${d.metadata.name} still exists${d.metadata.deletionTimestamp ? " (deleting)" : ""}`);
  }
  const secretByName = new Map(secrets.map((s) => [s.metadata.name, s]));
  const passwordOf = new Map<string, string>(); // device name → password in its Secret
  await Promise.all(
    [...workload.devices].map(async ([name, expected]) => {
      const d = deviceByName.get(name);
      if (!d) return fail(`MailDevice ${name} is missing`);
      const condition = ready(d.status?.conditions);
      if (!condition || condition.observedGeneration !== d.metadata.generation)
        return fail(`MailDevice ${name} is not Ready (${JSON.stringify(d.status?.conditions)})`);
      const secretName = d.status?.secretName ?? d.spec.secretName ?? `${name}-mail-credentials`;
      const secret = secretByName.get(secretName);
      if (!secret) return fail(`MailDevice ${name}: Secret ${secretName} is missing`);
      const owner = secret.metadata.ownerReferences?.find((r) => r.controller);
      if (owner?.uid !== d.metadata.uid)
        return fail(`Secret ${secretName} is not owned by MailDevice ${name}`);
      const password = decode(secret.data?.password);
      const annotations = secret.metadata.annotations ?? {};
      if (!password) return fail(`Secret ${secretName} has no password`);
      passwordOf.set(name, password);
      if (annotations[secretAnnotations.passwordDigest] !== sha256(password))
        fail(`Secret ${secretName}: the digest does not match the password`);
      const hash = annotations[secretAnnotations.passwordHash];
      if (!hash || !(await argon2Accepts(hash, password)))
        fail(`Secret ${secretName}: the hash annotation does not accept the password`);
      else verified++;
      // Exactly once: one new password per rotate value (and per password replaced by hand).
      const count = Number(annotations[secretAnnotations.rotationCount]);
      if (count !== expected.rotations || d.status?.rotationCount !== expected.rotations)
        fail(
          `MailDevice ${name}: ${expected.rotations} regenerations expected, Secret says ${count}, status says ${d.status?.rotationCount}`,
        );
      if (expected.rotate !== undefined) {
        if (annotations[secretAnnotations.rotatedFor] !== expected.rotate)
          fail(
            `Secret ${secretName}: rotated-for ${annotations[secretAnnotations.rotatedFor]}, want ${expected.rotate}`,
          );
        if (d.status?.lastRotateValue !== expected.rotate)
          fail(`MailDevice ${name}: lastRotateValue ${d.status?.lastRotateValue}, want ${expected.rotate}`);
      }
      const addressRotate = workload.addresses.get(expected.address)?.rotate;
      if (addressRotate !== undefined && annotations[secretAnnotations.addressRotatedFor] !== addressRotate)
        fail(
          `Secret ${secretName}: address-rotated-for ${annotations[secretAnnotations.addressRotatedFor]}, want ${addressRotate}`,
        );
      // The audit saw at least these passwords written: more than expected is a rotation done twice
      // (even across a gap); fewer counts only when it missed nothing.
      const issued = audit?.digests.get(name)?.size ?? 0;
      if (audit && (issued > expected.rotations + 1 || (audit.gaps === 0 && issued < expected.rotations + 1)))
        fail(`MailDevice ${name}: ${issued} passwords were written, ${expected.rotations + 1} expected`);
    }),
  );

  // Orphans: a Secret of a MailDevice that is gone, or a credentials Secret nobody owns.
  const liveUids = new Set(devices.map((d) => d.metadata.uid));
  for (const s of secrets) {
    const owner = s.metadata.ownerReferences?.find((r) => r.kind === "MailDevice");
    const credentials = s.metadata.labels?.[labels.component] === "credentials";
    if ((owner || credentials) && !(owner && liveUids.has(owner.uid)))
      fail(`Secret ${s.metadata.name} is orphaned (owner ${owner?.name ?? "none"})`);
  }
  const passwords = [...passwordOf.values()];
  if (new Set(passwords).size !== passwords.length) fail("two devices share a password");

  // The database: every entry belongs to a live device of its address, in the right file and
  // shard, and its hash accepts exactly that device's password; every device has its entry.
  let hashes = 0;
  const entryOf = new Map<string, string>();
  // Shards are placed by the operator's keyed hash: read the key as the cluster administrator may.
  const seal = await loadSealKey(client, { namespace: passdbNamespace, name: defaultSealKeySecretName });
  for (const shard of shards) {
    const index = Number(/-(\d+)$/.exec(shard.metadata.name)?.[1]);
    for (const [key, raw] of Object.entries(shard.data ?? {})) {
      if (key === ownersKey) continue;
      const entries = parseAddressFile(decode(raw)!);
      if (entries.length === 0) fail(`database file ${shard.metadata.name}/${key} has no entries`);
      for (const entry of entries) {
        hashes++;
        const deviceName = entry.device.split("/")[1]!;
        const expected = workload.devices.get(deviceName);
        if (!entry.device.startsWith(`${namespace}/`) || !expected) {
          fail(`database entry for ${entry.device} is orphaned`);
          continue;
        }
        const address = workload.addresses.get(expected.address)!.address.toLowerCase();
        if (entry.address !== address)
          fail(`database entry ${entry.device} is for ${entry.address}, not ${address}`);
        if (
          key !== addressKey(entry.address) ||
          index !== seal.bucket("passdb-shard", entry.address, passdbShards)
        )
          fail(`database entry ${entry.device} is in the wrong file ${shard.metadata.name}/${key}`);
        if (entryOf.has(deviceName)) fail(`database has two entries for ${entry.device}`);
        entryOf.set(deviceName, entry.hash);
      }
    }
  }
  await Promise.all(
    [...workload.devices.keys()].map(async (name) => {
      const hash = entryOf.get(name);
      const password = passwordOf.get(name);
      if (!hash) return fail(`database has no entry for ${name}`);
      if (password === undefined) return; // already reported
      if (await argon2Accepts(hash, password)) verified++;
      else fail(`database does not accept the password in ${name}'s Secret`);
    }),
  );

  return {
    ok: violations.length === 0,
    violations,
    addresses: addresses.length,
    devices: devices.length,
    secrets: secrets.length,
    hashes,
    verified,
  };
}

export interface Recovery {
  /** From the call until the invariant first held. */
  ms: number;
  /** performance.now() when it first held. */
  heldAt: number;
  report: InvariantReport;
}

/** Polls the invariant until it holds, then checks once more 2 s later: it must still hold. */
export async function waitForInvariant(
  cluster: FaultCluster,
  workload: Workload,
  audit?: SecretAudit,
  timeoutMs = 120_000,
): Promise<Recovery> {
  const started = performance.now();
  let last: InvariantReport | undefined;
  for (;;) {
    last = await checkInvariant(cluster, workload, audit).catch((error: unknown): InvariantReport => ({
      ok: false,
      violations: [`could not read the cluster: ${(error as Error).message}`],
      addresses: 0,
      devices: 0,
      secrets: 0,
      hashes: 0,
      verified: 0,
    }));
    if (last.ok) break;
    if (performance.now() - started > timeoutMs)
      throw new Error(
        `the invariant did not hold within ${timeoutMs} ms:\n${last.violations.slice(0, 30).join("\n")}`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
  const heldAt = performance.now();
  const ms = Math.round(heldAt - started);
  await new Promise((r) => setTimeout(r, 2000));
  const again = await checkInvariant(cluster, workload, audit);
  if (!again.ok) throw new Error(`the invariant held, then broke 2 s later:\n${again.violations.join("\n")}`);
  return { ms, heldAt, report: again };
}

/**
 * Watches the device Secrets from the start of a test and records every password the operator
 * wrote (by its digest annotation, per device) and every plaintext password ever stored. A watch
 * that has to relist (410 Gone) may have missed versions: `gaps` counts those.
 */
export class SecretAudit {
  /** Device name → digests of the passwords written for it. */
  readonly digests = new Map<string, Set<string>>();
  readonly passwords = new Set<string>();
  /** Digests a user wrote by hand (a forged record): not passwords the operator wrote. */
  private readonly handWritten = new Set<string>();
  gaps = 0;
  private readonly abort = new AbortController();
  private readonly running: Promise<void>;

  private constructor(client: KubeClient, namespace: string) {
    this.running = this.run(client, namespace);
  }

  static start(client: KubeClient, namespace: string): SecretAudit {
    return new SecretAudit(client, namespace);
  }

  private record(secret: Secret): void {
    const device = secret.metadata.ownerReferences?.find((r) => r.kind === "MailDevice")?.name;
    const password = decode(secret.data?.password);
    if (password) this.passwords.add(password);
    const digest = secret.metadata.annotations?.[secretAnnotations.passwordDigest];
    if (!device || !digest || this.handWritten.has(digest)) return;
    let set = this.digests.get(device);
    if (!set) this.digests.set(device, (set = new Set()));
    set.add(digest);
  }

  /** Tells the audit of a digest a test writes by hand before it writes it. */
  handWrite(digest: string): void {
    this.handWritten.add(digest);
  }

  private async run(client: KubeClient, namespace: string): Promise<void> {
    const ref = { ...resources.secrets, namespace };
    let rv: string | undefined;
    let first = true;
    while (!this.abort.signal.aborted) {
      try {
        if (rv === undefined) {
          const list = await client.list<Secret>(ref);
          list.items.forEach((s) => this.record(s));
          if (!first) this.gaps++;
          first = false;
          rv = list.metadata.resourceVersion;
        }
        await client.watch<Secret>(
          ref,
          { resourceVersion: rv, allowWatchBookmarks: true },
          (event: WatchEvent<Secret>) => {
            if (event.type === "ERROR") {
              if ((event.object as unknown as { code?: number }).code === 410) rv = undefined;
              return;
            }
            if (event.type !== "DELETED" && event.type !== "BOOKMARK") this.record(event.object);
            rv = event.object.metadata.resourceVersion ?? rv;
          },
          this.abort.signal,
        );
      } catch (error) {
        if (this.abort.signal.aborted) return;
        if (error instanceof ApiError && error.kind === "Gone") rv = undefined;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }
}

/** Every password the audit saw (and its base64 form) that appears in `logs`. */
export function plaintextIn(logs: string, audit: SecretAudit): string[] {
  const found: string[] = [];
  for (const password of audit.passwords) {
    if (logs.includes(password)) found.push(password);
    else if (logs.includes(Buffer.from(password).toString("base64"))) found.push(`${password} (base64)`);
  }
  return found;
}

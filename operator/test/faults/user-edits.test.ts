// A user editing device Secrets and the password database by hand while the operator rotates and
// revokes: hand-set passwords are replaced, deleted Secrets reissued, stripped labels and hashes
// restored, injected lines and consistent forgeries of a record replaced by a new password, and
// every rogue, swapped or missing database entry rewritten; then the invariant.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { labels, secretAnnotations } from "../../src/api/names.ts";
import { named, resources } from "../../src/kube/resources.ts";
import { ownersKey, parseAddressFile } from "../../src/passdb/format.ts";
import { FaultCluster, Workload, persistently, pool, sample } from "./cluster.ts";
import { SecretAudit, plaintextIn, waitForInvariant } from "./invariant.ts";
import { OperatorProcess } from "../../harness/operator-process.ts";

/** Restarted after an exit of its own like a pod (the kubelet would wait 10 s at first). */
const restartLikeAPod = 500;
import { report } from "./report.ts";

let cluster: FaultCluster;
let workload: Workload;
let audit: SecretAudit;
let operator: OperatorProcess;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const addressNames = Array.from({ length: 8 }, (_, i) => `edit${i}`);
const b64 = (s: string) => Buffer.from(s).toString("base64");

interface Shard {
  metadata: { name: string };
  data?: Record<string, string>;
}

const secretOf = (device: string) =>
  named(resources.secrets, cluster.namespace, `${device}-mail-credentials`);
const patchSecret = (device: string, patch: unknown) =>
  persistently(`edit ${device}'s Secret`, () =>
    cluster.client.mergePatch(secretOf(device), patch, "kubectl-edit"),
  );

/** Hand edits of a device Secret, and whether each makes the operator generate a new password. */
const secretEdits = {
  async setPassword(device: string) {
    await patchSecret(device, { data: { password: b64("typed-by-hand-123") } });
    return true;
  },
  async deleteSecret(device: string) {
    await persistently(`delete ${device}'s Secret`, () => cluster.client.delete(secretOf(device)));
    return true;
  },
  async stripHash(device: string) {
    await patchSecret(device, { metadata: { annotations: { [secretAnnotations.passwordHash]: null } } });
    return true;
  },
  async injectLine(device: string) {
    // A tenant appending a line of its own to the hash: never published, the record's seal fails.
    const secret = await cluster.client.get<{ metadata: { annotations?: Record<string, string> } }>(
      secretOf(device),
    );
    const hash = secret.metadata.annotations?.[secretAnnotations.passwordHash] ?? "";
    await patchSecret(device, {
      metadata: {
        annotations: {
          [secretAnnotations.passwordHash]: `${hash}\nroot@example.com\tmail/x\timap\t{PLAIN}pw`,
        },
      },
    });
    return true;
  },
  async forgeRecord(device: string) {
    // A consistent forgery: password, digest and hash of the tenant's choosing, the seal kept.
    const password = `chosen-by-the-tenant-${device}`;
    const digest = createHash("sha256").update(password).digest("hex");
    audit.handWrite(digest);
    await patchSecret(device, {
      data: { password: b64(password) },
      metadata: { annotations: { [secretAnnotations.passwordDigest]: digest } },
    });
    return true;
  },
  async stripLabels(device: string) {
    // Out of the operator's label-filtered cache: it must find the Secret and label it again.
    await patchSecret(device, {
      metadata: { labels: { [labels.component]: null, [labels.managedBy]: null } },
    });
    return false;
  },
  async addKey(device: string) {
    await patchSecret(device, { data: { "note.txt": b64("the user's own key, left alone") } });
    return false;
  },
};

async function shards(): Promise<Shard[]> {
  const list = await cluster.client.list<Shard>(
    { ...resources.secrets, namespace: cluster.passdbNamespace },
    { labelSelector: `${labels.component}=passdb` },
  );
  return list.items.filter((s) => Object.keys(s.data ?? {}).some((k) => k !== ownersKey));
}

const patchShard = (name: string, data: Record<string, string | null>) =>
  persistently(`edit shard ${name}`, () =>
    cluster.client.mergePatch(
      named(resources.secrets, cluster.passdbNamespace, name),
      { data },
      "kubectl-edit",
    ),
  );

/** Hand edits of the database: rogue entries, a swapped hash, a removed file, a deleted shard, a stray key. */
async function editDatabase(): Promise<string[]> {
  const done: string[] = [];
  const [first, second, third] = sample(await shards(), 3);
  if (first) {
    const [key, raw] = Object.entries(first.data!).find(([k]) => k !== ownersKey)!;
    const text = Buffer.from(raw, "base64").toString();
    const entries = parseAddressFile(text);
    const intruder = `${entries[0]!.address}\t${cluster.namespace}/intruder\timap\t${entries[0]!.hash}\n`;
    let edited = text + intruder;
    if (entries.length >= 2) {
      // Device 0's line now carries device 1's hash: device 1's password would open device 0's entry.
      edited = edited.replace(entries[0]!.hash, entries[1]!.hash);
      done.push("swapped a hash");
    }
    await patchShard(first.metadata.name, { [key]: b64(edited), "stray_40example.com": b64(intruder) });
    done.push("added a rogue entry", "added a stray key");
  }
  if (second) {
    await patchShard(second.metadata.name, {
      [Object.keys(second.data!).find((k) => k !== ownersKey)!]: null,
    });
    done.push("removed an address file");
  }
  if (third) {
    await persistently("delete a shard", () =>
      cluster.client.delete(named(resources.secrets, cluster.passdbNamespace, third.metadata.name)),
    );
    done.push("deleted a shard");
  }
  return done;
}

beforeAll(async () => {
  cluster = await FaultCluster.start();
  workload = new Workload(cluster);
  audit = SecretAudit.start(cluster.client, cluster.namespace);
  operator = await OperatorProcess.start({
    restartDelayMs: restartLikeAPod,
    name: "operator",
    args: cluster.operatorArgs(),
  });
  await operator.waitForMessage("became the leader");
  for (const name of addressNames) await workload.createAddress(name);
  const devices = Array.from({ length: 64 }, (_, i) => `ed${String(i).padStart(2, "0")}`);
  await pool(devices, 8, (name) => workload.createDevice(name, addressNames[Number(name.slice(2)) % 8]!));
  await waitForInvariant(cluster, workload, audit);
});

afterAll(async () => {
  const exit = await operator?.stop();
  const logs = (await operator?.logText()) ?? "";
  await audit?.stop();
  await operator?.dispose();
  await cluster?.stop();
  expect(plaintextIn(logs, audit)).toEqual([]);
  expect(exit?.code).toBe(0);
});

describe("a user editing Secrets and the database while the operator works", () => {
  it("restores consistency after every kind of hand edit, 5 rounds", async () => {
    const rounds: { round: number; edits: string[]; recoverMs: number }[] = [];
    for (let round = 0; round < 5; round++) {
      // Disjoint devices: each gets one change per round, so each must be acted on exactly once.
      const picked = sample(workload.deviceNames(), 22);
      const toRotate = picked.slice(0, 10);
      const edits = Object.entries(secretEdits).flatMap(([kind, edit], i) =>
        picked.slice(10 + 2 * i, 12 + 2 * i).map((device) => ({ kind, edit, device })),
      );
      const started = performance.now();
      const done: string[] = [];
      await Promise.all([
        pool(toRotate, 3, (n) => workload.rotateDevice(n)),
        pool(edits, 4, async ({ kind, edit, device }) => {
          await sleep(Math.random() * 300);
          if (await edit(device)) workload.devices.get(device)!.rotations++;
          done.push(kind);
        }),
        sleep(Math.random() * 300).then(async () => done.push(...(await editDatabase()))),
      ]);
      const recovery = await waitForInvariant(cluster, workload, audit);
      rounds.push({
        round,
        edits: [...new Set(done)].sort(),
        recoverMs: Math.round(recovery.heldAt - started),
      });
    }
    report("user hand edits of device Secrets and the database during 10 rotations, 5 rounds", {
      rounds,
      devices: workload.devices.size,
      auditGaps: audit.gaps,
    });
  });
});

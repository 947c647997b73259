// Faults of the mail-server side (issue 13): passdb-sync beside a real Dovecot while kube-apiserver
// is SIGKILLed mid-rotation (its watches resume or relist), while passdb-sync itself is SIGKILLed
// mid-rotation (a container restart on the same emptyDir), and while it is down as devices are
// deleted. After each: the folder equals the shard Secrets file for file, and at the IMAP port
// every current password is accepted and every earlier one refused.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MailServer } from "../../harness/dovecot.ts";
import { imapLogin, type Endpoint } from "../../harness/mail-clients.ts";
import { PassdbSyncProcess } from "../../harness/passdb-sync.ts";
import type { KubeClient, WatchEvent } from "../../src/kube/client.ts";
import { resources } from "../../src/kube/resources.ts";
import { addressKey } from "../../src/passdb/format.ts";
import { desiredFiles } from "../../src/passdb-sync/desired.ts";
import { FaultCluster, Workload, pool, sample } from "./cluster.ts";
import { waitForInvariant } from "./invariant.ts";
import { OperatorProcess } from "../../harness/operator-process.ts";

/** Restarted after an exit of its own like a pod (the kubelet would wait 10 s at first). */
const restartLikeAPod = 500;
import { report } from "./report.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const addressNames = Array.from({ length: 10 }, (_, i) => `user${String(i).padStart(2, "0")}`);

interface SecretJson {
  metadata: { name: string; resourceVersion?: string; ownerReferences?: { name: string }[] };
  data?: Record<string, string>;
}
const decode = (v: string | undefined) => (v === undefined ? undefined : Buffer.from(v, "base64").toString());

/** Every (address, password) a device Secret of the namespace ever held, from a watch. */
class PasswordHistory {
  readonly seen = new Map<string, { address: string; device: string }>();
  private readonly abort = new AbortController();
  private readonly running: Promise<void>;

  constructor(client: KubeClient, namespace: string) {
    this.running = this.run(client, namespace);
  }

  private record(secret: SecretJson): void {
    const address = decode(secret.data?.username);
    const password = decode(secret.data?.password);
    const device = secret.metadata.ownerReferences?.[0]?.name;
    if (address && password && device) this.seen.set(password, { address, device });
  }

  private async run(client: KubeClient, namespace: string): Promise<void> {
    const ref = { ...resources.secrets, namespace };
    let rv: string | undefined;
    while (!this.abort.signal.aborted) {
      try {
        if (rv === undefined) {
          const list = await client.list<SecretJson>(ref);
          list.items.forEach((s) => this.record(s));
          rv = list.metadata.resourceVersion;
        }
        await client.watch<SecretJson>(
          ref,
          { resourceVersion: rv, allowWatchBookmarks: true },
          (event: WatchEvent<SecretJson>) => {
            if (event.type === "ERROR") {
              rv = undefined;
              return;
            }
            if (event.type !== "DELETED" && event.type !== "BOOKMARK") this.record(event.object);
            rv = event.object.metadata.resourceVersion ?? rv;
          },
          this.abort.signal,
        );
      } catch {
        if (this.abort.signal.aborted) return;
        await sleep(200);
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }
}

let cluster: FaultCluster;
let workload: Workload;
let history: PasswordHistory;
let operator: OperatorProcess;
let mail: MailServer;
let sync: PassdbSyncProcess;
let imap: Endpoint;

beforeAll(async () => {
  cluster = await FaultCluster.start();
  workload = new Workload(cluster);
  history = new PasswordHistory(cluster.client, cluster.namespace);
  const folders = await PassdbSyncProcess.folders();
  mail = await MailServer.start({ passdbDir: folders.passdbDir });
  imap = { host: mail.host, port: mail.ports.imap };
  sync = await PassdbSyncProcess.start({
    kubeconfig: cluster.plane.kubeconfigPath,
    namespace: cluster.passdbNamespace,
    shards: cluster.passdbShards,
    dirs: folders,
    doveadm: { url: mail.doveadmUrl, apiKeyFile: mail.doveadmApiKeyFile },
    args: ["--pod-name", "dovecot-0"],
  });
  operator = await OperatorProcess.start({
    restartDelayMs: restartLikeAPod,
    name: "operator",
    args: cluster.operatorArgs(),
  });
  await operator.waitForMessage("became the leader");
  for (const name of addressNames) await workload.createAddress(name);
  await pool(
    Array.from({ length: 30 }, (_, i) => `dev${String(i).padStart(2, "0")}`),
    8,
    (name) => workload.createDevice(name, addressNames[Number(name.slice(3)) % addressNames.length]!),
  );
  await waitForInvariant(cluster, workload);
  await waitForFolder();
});

afterAll(async () => {
  await history?.stop();
  await operator?.stop();
  await operator?.dispose();
  await sync?.stop();
  await mail?.stop();
  await cluster?.stop();
});

/** What is wrong between the folder and the shard Secrets now (empty: equal, file for file). */
async function folderDiff(): Promise<string[]> {
  const shards = await cluster.client.list<SecretJson>(
    { ...resources.secrets, namespace: cluster.passdbNamespace },
    { labelSelector: "app.kubernetes.io/component=passdb" },
  );
  const desired = desiredFiles(
    shards.items.map((s) => ({
      name: s.metadata.name,
      resourceVersion: s.metadata.resourceVersion ?? "",
      data: s.data,
    })),
    "devicepass-passdb",
    cluster.passdbShards,
  );
  const problems = [...desired.problems];
  const onDisk = new Set((await readdir(sync.passdbDir)).filter((n) => !n.startsWith(".")));
  for (const [name, file] of desired.files) {
    const content = await readFile(join(sync.passdbDir, name), "utf8").catch(() => undefined);
    if (content !== file.content) problems.push(`${name}: ${content === undefined ? "missing" : "differs"}`);
    onDisk.delete(name);
  }
  for (const name of onDisk) problems.push(`${name}: on disk, in no shard`);
  for (const name of await readdir(sync.passdbDir))
    if (name.startsWith(".")) problems.push(`${name}: a temporary file left behind`);
  return problems;
}

/** Waits until the folder equals the shards; returns how long that took. */
async function waitForFolder(timeoutMs = 60_000): Promise<number> {
  const started = performance.now();
  for (;;) {
    const problems = await folderDiff().catch((e: unknown) => [`cannot read: ${(e as Error).message}`]);
    if (problems.length === 0) return Math.round(performance.now() - started);
    if (performance.now() - started > timeoutMs)
      throw new Error(`the folder did not converge in ${timeoutMs} ms:\n${problems.slice(0, 20).join("\n")}`);
    await sleep(200);
  }
}

/**
 * At the IMAP port: each current password of a device accepted, each earlier or deleted one refused.
 * Returns the counts.
 */
async function checkLogins(): Promise<{ accepted: number; refused: number }> {
  const current = new Map<string, string>();
  const secrets = await cluster.client.list<SecretJson>({
    ...resources.secrets,
    namespace: cluster.namespace,
  });
  for (const s of secrets.items) {
    const password = decode(s.data?.password);
    const address = decode(s.data?.username);
    if (password && address) current.set(password, address);
  }
  const failures: string[] = [];
  const cases = [...history.seen].map(([password, { address, device }]) => ({
    password,
    address,
    device,
    accepted: current.has(password),
  }));
  await pool(cases, 6, async (c) => {
    const result = await imapLogin(imap, c.address, c.password);
    if (result.ok !== c.accepted)
      failures.push(
        `${c.device}: a ${c.accepted ? "current" : "stale"} password was ${result.ok ? "accepted" : "refused"} (${result.response})`,
      );
  });
  expect(failures).toEqual([]);
  return {
    accepted: cases.filter((c) => c.accepted).length,
    refused: cases.filter((c) => !c.accepted).length,
  };
}

describe("passdb-sync under faults", () => {
  it("kube-apiserver killed and restarted while devices are rotated and deleted", async () => {
    const names = workload.deviceNames();
    const toDelete = sample(names, 4);
    const toRotate = sample(
      names.filter((n) => !toDelete.includes(n)),
      16,
    );
    const changes = Promise.all([
      pool(toRotate, 4, (n) => workload.rotateDevice(n)),
      pool(toDelete, 2, (n) => workload.deleteDevice(n)),
    ]);
    await sleep(300 + Math.random() * 700);
    const killedAt = performance.now();
    await cluster.plane.restartApiServer("SIGKILL", 3000);
    const upAt = performance.now();
    await changes;
    await waitForInvariant(cluster, workload);
    const folderMs = await waitForFolder();
    const logins = await checkLogins();
    report("kube-apiserver killed for 3 s while passdb-sync follows rotations", {
      downMs: Math.round(upAt - killedAt),
      convergedAfterUpMs: Math.round(performance.now() - upAt),
      folderMs,
      ...logins,
    });
  });

  it("passdb-sync SIGKILLed mid-rotation and restarted on the same folder", async () => {
    const toRotate = sample(workload.deviceNames(), 12);
    const changes = pool(toRotate, 3, (n) => workload.rotateDevice(n));
    await sleep(200 + Math.random() * 500);
    await sync.restart("SIGKILL");
    await changes;
    await waitForInvariant(cluster, workload);
    const folderMs = await waitForFolder();
    const logins = await checkLogins();
    report("passdb-sync SIGKILLed during 12 rotations", { folderMs, ...logins });
  });

  it("devices deleted while passdb-sync is down: their file goes once it has listed every shard again", async () => {
    const victim = addressNames[3]!;
    const devices = workload.deviceNames().filter((n) => workload.devices.get(n)!.address === victim);
    expect(devices.length).toBeGreaterThan(0);
    const file = join(sync.passdbDir, addressKey(`${victim}@example.com`));
    await sync.kill("SIGKILL");
    await pool(devices, 2, (n) => workload.deleteDevice(n));
    await waitForInvariant(cluster, workload);
    // Nobody updates the folder while the sidecar is down: the file is still there…
    expect((await stat(file)).isFile()).toBe(true);
    const restartedAt = performance.now();
    await sync.resume();
    // …and gone once the new process has listed every shard (it reports "in sync" only after that).
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
    const folderMs = await waitForFolder();
    const logins = await checkLogins();
    report("devices of an address deleted while passdb-sync was down", {
      inSyncAfterStartMs: Math.round(performance.now() - restartedAt),
      folderMs,
      ...logins,
    });
  });
});

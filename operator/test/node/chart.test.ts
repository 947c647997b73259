// The Helm chart on a real node (issue 15): the built image's pods run under Pod Security
// `restricted`, become Ready through their own probes, elect a leader, reconcile the examples and
// hand over on a rolling restart; Dovecot from examples/dovecot/ runs as a pod that mounts the shard
// Secrets, and a revoked password stops working when the kubelet refreshes that volume (measured).
import { randomBytes, randomInt } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imapLogin } from "../../harness/mail-clients.ts";
import { defaultSyncFrequency, nodeName, type NodeCluster } from "../../harness/node.ts";
import { chartDir, helmFor, valuesFile } from "../install-support.ts";
import { devicePassword } from "../operator-support.ts";
import { eventually } from "../support.ts";
import {
  dovecotManifests,
  explained,
  imapNodePort,
  pods,
  repoRoot,
  restrictedNamespace,
  startCluster,
  untilImapServes,
  untilLogin,
} from "./node-support.ts";

const release = "devicepass";
const releaseNs = "devicepass";
const mailNs = "mail";
const shards = 4;
const shardSecrets = Array.from(
  { length: shards },
  (_, i) => `devicepass-passdb-${String(i).padStart(2, "0")}`,
);
const operatorSelector = "app.kubernetes.io/name=devicepass";
/** A fixed ClusterIP in the plane's Service range, so that the chart can name Dovecot's doveadm API. */
const dovecotClusterIP = "10.0.0.200";

let cluster: NodeCluster;
let imap: { host: string; port: number };

interface DeviceStatus {
  metadata: { name: string };
  status?: {
    rotationCount?: number;
    lastRotateValue?: string;
    lastAddressRotateValue?: string;
    passwordGeneratedAt?: string;
    conditions?: { type: string; status: string }[];
  };
}

async function leaseHolder(): Promise<string> {
  return cluster.kubectl.ok(["get", "lease", `${release}-leader`, "-n", releaseNs, "-o", "jsonpath={.spec.holderIdentity}"]); // prettier-ignore
}

beforeAll(async () => {
  cluster = await startCluster("node/chart");
  const k = cluster.kubectl;
  await restrictedNamespace(k, releaseNs);
  await restrictedNamespace(k, mailNs);
  await k.ok(["create", "secret", "generic", "doveadm-api-key", "-n", releaseNs, `--from-literal=api-key=${randomBytes(24).toString("hex")}`]); // prettier-ignore
  const helm = await helmFor(cluster.plane.kubeconfigPath);
  // The chart's defaults name the image devicepass:<appVersion> with pullPolicy IfNotPresent: the
  // image imported into the node's containerd is what runs.
  await helm.ok([
    "install", release, chartDir, "-n", releaseNs, "-f",
    await valuesFile({
      replicas: 2,
      watchNamespaces: [mailNs],
      passdb: { shards },
      dovecot: {
        doveadmUrl: `http://${dovecotClusterIP}:8080/doveadm/v1`,
        apiKeySecret: { name: "doveadm-api-key" },
      },
    }),
  ]); // prettier-ignore
}, 1_800_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("the chart on a real node", () => {
  it("runs two operator pods that become Ready through their probes, one holding the leader Lease", async () => {
    const k = cluster.kubectl;
    await explained(cluster, releaseNs, () => k.ok(["rollout", "status", `deployment/${release}`, "-n", releaseNs, "--timeout=300s"])); // prettier-ignore
    const running = await pods(k, releaseNs, operatorSelector);
    expect(running).toHaveLength(2);
    expect(running.every((p) => p.ready && p.restarts === 0)).toBe(true);
    const node = await k.json<{ status: { addresses: { type: string; address: string }[] } }>(["get", "node", nodeName]); // prettier-ignore
    expect(node.status.addresses).toContainEqual({ type: "InternalIP", address: cluster.nodeAddress });
    await eventually(async () => {
      const holder = await leaseHolder();
      expect(running.map((p) => p.name)).toContain(holder.split("_")[0]);
    }, 60_000);
    // The image is the one built here, and the kubelet never pulled it.
    const spec = await k.json<{ spec: { containers: { image: string; imagePullPolicy: string }[] } }>([
      "get", "pod", running[0]!.name, "-n", releaseNs,
    ]); // prettier-ignore
    expect(spec.spec.containers[0]).toMatchObject({
      image: "devicepass:0.1.0",
      imagePullPolicy: "IfNotPresent",
    });
  });

  it("reconciles examples/mail/ with examples/domain/ applied", async () => {
    const k = cluster.kubectl;
    await k.ok(["apply", "-f", join(repoRoot, "examples", "domain")]);
    await k.ok(["apply", "-n", mailNs, "-f", join(repoRoot, "examples", "mail")]);
    await explained(cluster, releaseNs, () =>
      k.ok(["wait", "--for=condition=Ready", "maildevice", "--all", "-n", mailNs, "--timeout=120s"]),
    );
    const devices = await k.json<{ items: DeviceStatus[] }>(["get", "maildevices", "-n", mailNs]);
    expect(devices.items.map((d) => d.metadata.name).sort()).toEqual(["alice-iphone", "alice-laptop-bob", "alice-printer"]); // prettier-ignore
    for (const name of ["alice-iphone-mail-credentials", "office-scanner-mail"])
      expect(await devicePassword(k, mailNs, name)).toHaveLength(24);
  });

  it("serves /metrics on the pod's metrics port", async () => {
    const leader = (await leaseHolder()).split("_")[0]!;
    const ip = (await pods(cluster.kubectl, releaseNs, operatorSelector)).find((p) => p.name === leader)!.ip;
    const metrics = await (await fetch(`http://${ip}:8080/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE devicepass_credentials_total counter$/m);
    expect(metrics).toMatch(/^devicepass_passdb_entries\b.* 3$/m);
  });

  it("runs Dovecot from examples/dovecot/ as a pod that takes a device password over IMAP", async () => {
    const k = cluster.kubectl;
    const dovecot = cluster.images.dovecot;
    await k.ok(["apply", "-f", "-"], dovecotManifests({
      namespace: releaseNs,
      image: dovecot.ref,
      user: dovecot.user,
      configMap: `${release}-dovecot`,
      shardSecrets,
      apiKeySecret: "doveadm-api-key",
      clusterIP: dovecotClusterIP,
    })); // prettier-ignore
    await explained(cluster, releaseNs, () => k.ok(["wait", "--for=condition=Ready", "pod/dovecot", "-n", releaseNs, "--timeout=120s"])); // prettier-ignore
    imap = { host: cluster.nodeAddress, port: await imapNodePort(k, releaseNs) };
    const password = await devicePassword(k, mailNs, "alice-iphone-mail-credentials");
    // A new pod's volume holds the Secrets as they are when it starts: no wait for a resync.
    await untilImapServes(imap, "alice@example.com", password);
    expect((await imapLogin(imap, "alice@example.com", `${password}x`)).ok).toBe(false);
    // The printer's password is for SMTP only.
    expect((await imapLogin(imap, "alice@example.com", await devicePassword(k, mailNs, "office-scanner-mail"))).ok).toBe(false); // prettier-ignore
  });

  it("hands over on `kubectl rollout restart` without a second rotation", async () => {
    const k = cluster.kubectl;
    const statuses = async () =>
      (await k.json<{ items: DeviceStatus[] }>(["get", "maildevices", "-n", mailNs])).items
        .map((d) => ({ name: d.metadata.name, ...d.status, conditions: undefined }))
        .sort((a, b) => a.name.localeCompare(b.name));
    const before = await statuses();
    const password = await devicePassword(k, mailNs, "alice-iphone-mail-credentials");
    const oldPods = (await pods(k, releaseNs, operatorSelector)).map((p) => p.name);
    const oldHolder = await leaseHolder();

    await k.ok(["rollout", "restart", `deployment/${release}`, "-n", releaseNs]);
    await explained(cluster, releaseNs, () => k.ok(["rollout", "status", `deployment/${release}`, "-n", releaseNs, "--timeout=300s"])); // prettier-ignore
    const newPods = (await pods(k, releaseNs, operatorSelector)).filter((p) => !p.terminating);
    expect(newPods).toHaveLength(2);
    expect(newPods.some((p) => oldPods.includes(p.name))).toBe(false);
    await eventually(async () => {
      const holder = await leaseHolder();
      expect(holder).not.toBe(oldHolder);
      expect(newPods.map((p) => p.name)).toContain(holder.split("_")[0]);
    }, 90_000);
    // The new leader found every device up to date: no rotation, no new password.
    await k.ok(["wait", "--for=condition=Ready", "maildevice", "--all", "-n", mailNs, "--timeout=60s"]);
    expect(await statuses()).toEqual(before);
    expect(await devicePassword(k, mailNs, "alice-iphone-mail-credentials")).toBe(password);
    expect((await imapLogin(imap, "alice@example.com", password)).ok).toBe(true);
  });

  /**
   * Creates a device, waits until Dovecot takes its password, waits a random part of the kubelet's
   * sync period (so that deletions land at any phase of it), deletes the device and times until the
   * shard Secret drops it and until Dovecot refuses the password.
   */
  async function measureRevocation(
    name: string,
    syncSeconds: number,
  ): Promise<{ secretMs: number; loginMs: number }> {
    const k = cluster.kubectl;
    await k.ok(["apply", "-f", "-"], JSON.stringify({
      apiVersion: "mail.devicepass.io/v1alpha1",
      kind: "MailDevice",
      metadata: { name, namespace: mailNs },
      spec: { address: "alice", displayName: name, icon: "laptop", protocols: ["imap"] },
    })); // prettier-ignore
    await k.ok(["wait", "--for=condition=Ready", `maildevice/${name}`, "-n", mailNs, "--timeout=60s"]);
    const password = await devicePassword(k, mailNs, `${name}-mail-credentials`);
    await untilLogin(imap, "alice@example.com", password, true, 4 * syncSeconds * 1000 + 60_000);
    await new Promise((r) => setTimeout(r, randomInt(syncSeconds * 1000)));

    const started = performance.now();
    const shardDropped = (async () => {
      for (;;) {
        const shardsData = await Promise.all(shardSecrets.map((s) => k.run(["get", "secret", s, "-n", releaseNs, "-o", "jsonpath={.data}"]))); // prettier-ignore
        const entries = shardsData.map((r) => Object.values(JSON.parse(r.stdout || "{}") as Record<string, string>).map((v) => Buffer.from(v, "base64").toString())); // prettier-ignore
        if (!entries.flat().some((file) => file.includes(`${mailNs}/${name}\t`)))
          return performance.now() - started;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await k.ok(["delete", "maildevice", name, "-n", mailNs, "--wait=false"]);
    const loginMs = await untilLogin(
      imap,
      "alice@example.com",
      password,
      false,
      4 * syncSeconds * 1000 + 60_000,
    );
    return { secretMs: await shardDropped, loginMs };
  }

  it("refuses a deleted device's password once the kubelet refreshes the Secret volume (measured)", async () => {
    const samples = 3;
    const results: Record<string, { secretMs: number; loginMs: number }[]> = {};
    for (const [syncFrequency, seconds] of [
      [defaultSyncFrequency, 60],
      ["10s", 10],
    ] as const) {
      if (syncFrequency !== defaultSyncFrequency) {
        await cluster.restartKubelet(syncFrequency);
        await cluster.kubectl.ok(["wait", "--for=condition=Ready", `node/${nodeName}`, "--timeout=60s"]);
      }
      results[syncFrequency] = [];
      for (let i = 0; i < samples; i++)
        results[syncFrequency].push(await measureRevocation(`probe-${seconds}s-${i}`, seconds));
    }
    const seconds = (ms: number) => (ms / 1000).toFixed(1);
    for (const [syncFrequency, runs] of Object.entries(results))
      console.log(`[node/chart] revocation delay with kubelet syncFrequency ${syncFrequency}: login refused after ${runs.map((r) => seconds(r.loginMs)).join(", ")} s; shard Secret updated after ${runs.map((r) => seconds(r.secretMs)).join(", ")} s`); // prettier-ignore
    // Revoked whole: the device's credential Secret went with it.
    const left = await cluster.kubectl.ok(["get", "secrets", "-n", mailNs, "-o", "name"]);
    expect(left).not.toMatch(/probe-/);
  }, 1_800_000);
});

// The Helm chart on a real node (issue 15): the built image's pods run under Pod Security
// `restricted`, become Ready through their own probes, elect a leader, reconcile the examples and
// hand over on a rolling restart; Dovecot with examples/dovecot/'s files runs as a pod that mounts
// the shard Secrets as a projected Secret volume, and refuses a deleted device's password once the
// kubelet has refreshed that volume. How long that takes: `npm run bench:node`.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imapLogin, type Endpoint } from "../../harness/mail-clients.ts";
import {
  deployProjectedDovecot,
  projectedDovecotPorts,
  untilImapServes,
  untilLogin,
} from "../../harness/node-dovecot.ts";
import { nodeName, type NodeCluster } from "../../harness/node.ts";
import { chartDir, helmFor, valuesFile } from "../install-support.ts";
import { devicePassword } from "../operator-support.ts";
import { eventually } from "../support.ts";
import { explained, pods, repoRoot, restrictedNamespace, startCluster } from "./node-support.ts";

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
/** The kubelet's Secret volume sync period here: short, so that a revocation shows within seconds. */
const syncFrequency = "10s";

let cluster: NodeCluster;
let imap: Endpoint;

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
  cluster = await startCluster("node/chart", { syncFrequency });
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
        doveadmUrl: `http://${dovecotClusterIP}:${projectedDovecotPorts.doveadm}/doveadm/v1`,
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

  it("runs Dovecot with examples/dovecot/'s files as a pod that takes a device password over IMAP", async () => {
    const k = cluster.kubectl;
    const dovecot = cluster.images.dovecot;
    imap = await explained(cluster, releaseNs, () =>
      deployProjectedDovecot(cluster, {
        namespace: releaseNs,
        image: dovecot.ref,
        user: dovecot.user,
        configMap: `${release}-dovecot`,
        shardSecrets,
        apiKeySecret: "doveadm-api-key",
        clusterIP: dovecotClusterIP,
      }),
    );
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

  it("refuses a deleted device's password once the kubelet has refreshed the Secret volume", async () => {
    const k = cluster.kubectl;
    const laptop = await devicePassword(k, mailNs, "alice-laptop-bob-mail-credentials");
    expect((await imapLogin(imap, "alice@example.com", laptop)).ok).toBe(true);
    await k.ok(["delete", "maildevice", "alice-laptop-bob", "-n", mailNs]);
    // Within the kubelet's next sync of the pod (syncFrequency, plus up to half of it as jitter).
    await untilLogin(imap, "alice@example.com", laptop, false, 120_000, 500);
    const phone = await devicePassword(k, mailNs, "alice-iphone-mail-credentials");
    expect((await imapLogin(imap, "alice@example.com", phone)).ok).toBe(true);
  });
});

// The plain install manifest on a real node (issue 15): `kubectl apply` of
// charts/devicepass-install.yaml runs the built image devicepass:<appVersion> in devicepass-system
// under Pod Security `restricted`, watching every namespace; Dovecot in a pod takes a device's
// password, and refuses it once the device is deleted and the kubelet has refreshed the volume.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imapLogin } from "../../harness/mail-clients.ts";
import type { NodeCluster } from "../../harness/node.ts";
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

const systemNs = "devicepass-system";
const mailNs = "mail";
const shardSecrets = Array.from({ length: 64 }, (_, i) => `devicepass-passdb-${String(i).padStart(2, "0")}`);
/** The kubelet refreshes Secret volumes at this period here, to keep the file short (the chart's file measures the default). */
const syncFrequency = "10s";

let cluster: NodeCluster;

beforeAll(async () => {
  cluster = await startCluster("node/install-manifest", { syncFrequency });
  // Made first, so that Pod Security is enforced before the manifest's pods exist; the
  // manifest's own Namespace object then only adds its labels.
  await restrictedNamespace(cluster.kubectl, systemNs);
  await restrictedNamespace(cluster.kubectl, mailNs);
}, 1_800_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("the install manifest on a real node", () => {
  it("runs the operator's pod until it is Ready and reconciles the examples", async () => {
    const k = cluster.kubectl;
    await k.ok(["apply", "--server-side", "-f", join(repoRoot, "charts", "devicepass-install.yaml")]);
    await explained(cluster, systemNs, () =>
      k.ok(["rollout", "status", "deployment/devicepass", "-n", systemNs, "--timeout=300s"]),
    );
    const running = await pods(k, systemNs, "app.kubernetes.io/name=devicepass");
    expect(running).toHaveLength(1);
    expect(running[0]).toMatchObject({ ready: true, restarts: 0 });
    await eventually(async () => {
      const holder = await k.ok(["get", "lease", "devicepass-leader", "-n", systemNs, "-o", "jsonpath={.spec.holderIdentity}"]); // prettier-ignore
      expect(holder.split("_")[0]).toBe(running[0]!.name);
    }, 60_000);

    await k.ok(["apply", "-f", join(repoRoot, "examples", "domain")]);
    await k.ok(["apply", "-n", mailNs, "-f", join(repoRoot, "examples", "mail")]);
    await k.ok(["wait", "--for=condition=Ready", "maildevice", "--all", "-n", mailNs, "--timeout=120s"]);
  });

  it("lets Dovecot in a pod take a device password, and refuse it once the device is deleted", async () => {
    const k = cluster.kubectl;
    const dovecot = cluster.images.dovecot;
    // The manifest configures no doveadm API; the example's snippet still wants a key file.
    await k.ok(["create", "secret", "generic", "doveadm-api-key", "-n", systemNs, `--from-literal=api-key=${randomBytes(24).toString("hex")}`]); // prettier-ignore
    await k.ok(["apply", "-f", "-"], dovecotManifests({
      namespace: systemNs,
      image: dovecot.ref,
      user: dovecot.user,
      configMap: "devicepass-dovecot",
      shardSecrets,
      apiKeySecret: "doveadm-api-key",
      clusterIP: "10.0.0.201",
    })); // prettier-ignore
    await explained(cluster, systemNs, () =>
      k.ok(["wait", "--for=condition=Ready", "pod/dovecot", "-n", systemNs, "--timeout=120s"]),
    );
    const imap = { host: cluster.nodeAddress, port: await imapNodePort(k, systemNs) };
    const password = await devicePassword(k, mailNs, "alice-laptop-bob-mail-credentials");
    await untilImapServes(imap, "alice@example.com", password);

    await k.ok(["delete", "maildevice", "alice-laptop-bob", "-n", mailNs]);
    const ms = await untilLogin(imap, "alice@example.com", password, false, 120_000);
    console.log(`[node/install-manifest] login refused ${(ms / 1000).toFixed(1)} s after the device's deletion (kubelet syncFrequency ${syncFrequency})`); // prettier-ignore
    // The other devices of the address keep working.
    const phone = await devicePassword(k, mailNs, "alice-iphone-mail-credentials");
    expect((await imapLogin(imap, "alice@example.com", phone)).ok).toBe(true);
  });
});

// The plain install manifest on a real node (issue 15): `kubectl apply` of
// charts/devicepass-install.yaml runs the built image devicepass:<appVersion> in devicepass-system
// under Pod Security `restricted`, watching every namespace; then examples/dovecot/kubernetes/ as
// shipped (Dovecot with the passdb-sync sidecar, in mail-server) takes a device's password over
// IMAPS, refuses it once the device is deleted, and refuses a rotated password while taking the new
// one, with the old password's open session cut. How fast: `npm run bench:node`.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imapLogin, imapNoop, type Endpoint } from "../../harness/mail-clients.ts";
import {
  deployShippedDovecot,
  shippedDovecot,
  untilImapServes,
  untilLogin,
} from "../../harness/node-dovecot.ts";
import type { NodeCluster } from "../../harness/node.ts";
import { rotateAnnotation } from "../../src/api/names.ts";
import { devicePassword } from "../operator-support.ts";
import { eventually } from "../support.ts";
import { explained, pods, repoRoot, restrictedNamespace, startCluster } from "./node-support.ts";

const systemNs = "devicepass-system";
const mailNs = "mail";
const user = "alice@example.com";

let cluster: NodeCluster;
let imaps: Endpoint;

beforeAll(async () => {
  cluster = await startCluster("node/install-manifest");
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

  it("runs examples/dovecot/kubernetes/ as shipped, whose Dovecot takes a device password over IMAPS", async () => {
    imaps = await explained(cluster, [shippedDovecot.namespace, systemNs], () =>
      deployShippedDovecot(cluster),
    );
    const password = await devicePassword(cluster.kubectl, mailNs, "alice-laptop-bob-mail-credentials");
    // Dovecot starts only once the sidecar has written every shard: the first login works.
    await untilImapServes(imaps, user, password, 10_000);
  });

  it("refuses a deleted device's password at the next logins", async () => {
    const k = cluster.kubectl;
    const laptop = await devicePassword(k, mailNs, "alice-laptop-bob-mail-credentials");
    await k.ok(["delete", "maildevice", "alice-laptop-bob", "-n", mailNs]);
    await untilLogin(imaps, user, laptop, false, 60_000);
    // The other devices of the address keep working.
    const phone = await devicePassword(k, mailNs, "alice-iphone-mail-credentials");
    expect((await imapLogin(imaps, user, phone)).ok).toBe(true);
  });

  it("refuses a rotated password, takes the new one, and cuts the old password's session", async () => {
    const k = cluster.kubectl;
    const old = await devicePassword(k, mailNs, "alice-iphone-mail-credentials");
    const session = await imapLogin(imaps, user, old, { keepOpen: true });
    expect(session.ok).toBe(true);
    await k.ok(["annotate", "maildevice", "alice-iphone", "-n", mailNs, `${rotateAnnotation}=${Date.now()}`, "--overwrite"]); // prettier-ignore
    await untilLogin(imaps, user, old, false, 60_000);
    const current = await eventually(
      async () => {
        const password = await devicePassword(k, mailNs, "alice-iphone-mail-credentials");
        expect(password).not.toBe(old);
        return password;
      },
      60_000,
      500,
    );
    await untilLogin(imaps, user, current, true, 60_000);
    // The sidecar kicked the address's sessions through its pod's doveadm API.
    await eventually(
      async () => {
        const answer = await imapNoop(session.connection!).catch(
          (error: Error) => `closed (${error.message})`,
        );
        expect(answer).not.toMatch(/^n1 OK/);
      },
      30_000,
      500,
    );
  });
});

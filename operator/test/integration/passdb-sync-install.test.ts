// The shipped Kubernetes files for Dovecot with passdb-sync (examples/dovecot/kubernetes/) against
// the real API server: the sidecar's RBAC applied as shipped, passdb-sync run with nothing but the
// token of the Dovecot ServiceAccount, `kubectl auth can-i` for everything else, and the Deployment
// and Service accepted by the API server (server-side dry run: no node runs them here).
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PassdbSyncProcess } from "../../harness/passdb-sync.ts";
import { addressKey } from "../../src/passdb/format.ts";
import { readSyncReport } from "../../src/passdb/sync-report.ts";
import { canI, parseManifests, repoRoot, serviceAccountKubeconfig } from "../install-support.ts";
import { startOperator, type RunningOperator } from "../operator-support.ts";
import { adminKubectl, eventually, withNamespace } from "../support.ts";

const kubectl = adminKubectl();
const exampleDir = join(repoRoot, "examples", "dovecot", "kubernetes");
const disposers: (() => Promise<void>)[] = [];
let dovecotNs: string;
let passdbNs: string;
let mailNs: string;
let operator: RunningOperator | undefined;
let sync: PassdbSyncProcess | undefined;

/** A shipped file with its two namespaces replaced by this test's own. */
async function example(name: string): Promise<string> {
  return (await readFile(join(exampleDir, name), "utf8"))
    .replaceAll("namespace: mail-server", `namespace: ${dovecotNs}`)
    .replaceAll("namespace: devicepass-system", `namespace: ${passdbNs}`)
    .replaceAll("--namespace=devicepass-system", `--namespace=${passdbNs}`);
}

beforeAll(async () => {
  const create = async (prefix: string) => {
    const ns = await withNamespace(kubectl, prefix);
    disposers.push(ns.dispose);
    return ns.name;
  };
  dovecotNs = await create("sync-dovecot");
  passdbNs = await create("sync-passdb");
  mailNs = await create("sync-mail");
});

afterAll(async () => {
  await sync?.stop();
  await operator?.stop();
  for (const dispose of disposers) await dispose();
});

describe("examples/dovecot/kubernetes", () => {
  it("is accepted by the API server as shipped", async () => {
    await kubectl.ok(["apply", "-f", "-"], await example("passdb-sync-rbac.yaml"));
    const dovecot = await example("dovecot.yaml");
    // The ServiceAccount for real (the sidecar's token comes from it); the pod only as a dry run.
    const objects = parseManifests(dovecot);
    expect(objects.map((o) => o.kind)).toEqual(["ServiceAccount", "Deployment", "Service"]);
    await kubectl.ok(["apply", "-f", "-"], JSON.stringify(objects[0]));
    await kubectl.ok(["apply", "--dry-run=server", "-f", "-"], dovecot);
  });

  it("lets passdb-sync run with the Dovecot ServiceAccount's token alone, and write its report", async () => {
    operator = await startOperator({ namespaces: [mailNs], passdbNamespace: passdbNs, passdbShards: 64 });
    await kubectl.ok(["apply", "-n", mailNs, "-f", join(repoRoot, "examples", "mail")]);
    await kubectl.ok(["wait", "-n", mailNs, "--for=condition=Ready", "--timeout=60s", "maildevice", "--all"]);
    const kubeconfig = await serviceAccountKubeconfig(kubectl, dovecotNs, "dovecot");
    sync = await PassdbSyncProcess.start({
      kubeconfig,
      namespace: passdbNs,
      shards: 64,
      args: ["--pod-name", "dovecot-7d9f8-x2x9q"],
    });
    await eventually(async () => {
      expect((await stat(join(sync!.passdbDir, addressKey("alice@example.com")))).isFile()).toBe(true);
    });
    const report = await eventually(async () => {
      const cm = await kubectl.json<{ data?: Record<string, string> }>([
        "get", "configmap", "devicepass-passdb-sync", "-n", passdbNs,
      ]); // prettier-ignore
      const { reports } = readSyncReport(cm.data, new Date());
      expect(reports.map((r) => [r.pod, r.synced])).toEqual([["dovecot-7d9f8-x2x9q", true]]);
      return reports[0]!;
    });
    expect(report.shards.size).toBe(64);
    expect(await sync.log()).not.toMatch(/forbidden/i);
  });

  it("keeps the sidecar to the shard Secrets and its report", async () => {
    const sa = `system:serviceaccount:${dovecotNs}:dovecot`;
    const yes = async (...args: string[]) => expect(await canI(kubectl, sa, args), args.join(" ")).toBe(true);
    const no = async (...args: string[]) => expect(await canI(kubectl, sa, args), args.join(" ")).toBe(false);
    await yes("list", "secrets/devicepass-passdb-00", "-n", passdbNs);
    await yes("watch", "secrets/devicepass-passdb-63", "-n", passdbNs);
    await yes("patch", "configmaps/devicepass-passdb-sync", "-n", passdbNs);
    // Not every Secret of the namespace, not a list of them all, not another shard number, no write.
    await no("list", "secrets", "-n", passdbNs);
    await no("get", "secrets/doveadm-api-key", "-n", passdbNs);
    await no("list", "secrets/devicepass-passdb-64", "-n", passdbNs);
    await no("update", "secrets/devicepass-passdb-00", "-n", passdbNs);
    await no("patch", "secrets/devicepass-passdb-00", "-n", passdbNs);
    // Not another ConfigMap (kube-root-ca.crt feeds every pod's API credentials), nor a new one.
    await no("patch", "configmaps/kube-root-ca.crt", "-n", passdbNs);
    await no("create", "configmaps", "-n", passdbNs);
    await no("get", "configmaps/devicepass-passdb-sync", "-n", passdbNs);
    // Nothing of its own namespace, nor devices, nor anything cluster-wide.
    await no("get", "secrets", "-n", dovecotNs);
    await no("list", "maildevices", "-n", mailNs);
    await no("patch", "maildevices/status", "-n", mailNs);
    await no("list", "secrets", "--all-namespaces");
  });
});

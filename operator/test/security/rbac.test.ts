// Issue 11, finding 7: what the chart's ServiceAccount may do. The default install chooses no
// namespaces for the operator (the user must: watchNamespaces, or allNamespaces=true); with a list
// it holds no Secret access elsewhere, kube-system included; with allNamespaces, where RBAC must
// grant Secrets in every namespace, the chart's ValidatingAdmissionPolicy refuses each of the
// operator's writes (create, relabel, delete) to a Secret that is not devicepass's own.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canI, chartDir, helmFor, valuesFile, type Helm } from "../install-support.ts";
import { adminKubectl, eventually, withNamespace } from "../support.ts";
import { asUser, yamlOf } from "./support.ts";

const admin = adminKubectl();
const hex = () => randomBytes(3).toString("hex");
const testArgon2 = { memoryKiB: 1024, iterations: 1, parallelism: 1 };
let helm: Helm;
const disposers: (() => Promise<unknown>)[] = [];
const namespace = async (prefix: string) => {
  const ns = await withNamespace(admin, prefix);
  disposers.push(ns.dispose);
  return ns.name;
};
const install = async (release: string, ns: string, values: Record<string, unknown>) => {
  const result = await helm.run(["install", release, chartDir, "-n", ns, "-f", await valuesFile(values)]);
  if (result.code === 0) disposers.push(() => helm.run(["uninstall", release, "-n", ns, "--wait=false"]));
  return result;
};

beforeAll(async () => {
  helm = await helmFor();
});
afterAll(async () => {
  for (const dispose of disposers.reverse()) await dispose();
});

describe("(7) the chart's RBAC", () => {
  it("refuses a default install that chooses no namespaces", async () => {
    const ns = await namespace("sec-rbac-default");
    const result = await install(`sec-${hex()}`, ns, {});
    expect(result.code, "helm install with the default values").not.toBe(0);
    expect(result.stderr).toMatch(
      /set watchNamespaces to the namespaces whose MailDevices devicepass manages, or allNamespaces=true/,
    );
  });

  it("with watchNamespaces, gives its ServiceAccount no Secrets outside them (kubectl auth can-i)", async () => {
    const [releaseNs, mailNs, passdbNs] = [
      await namespace("sec-rbac-release"),
      await namespace("sec-rbac-mail"),
      await namespace("sec-rbac-passdb"),
    ];
    const release = `sec-${hex()}`;
    const result = await install(release, releaseNs, {
      watchNamespaces: [mailNs],
      passdb: { namespace: passdbNs, shards: 4 },
      password: { argon2: testArgon2 },
    });
    expect(result.code, result.stderr).toBe(0);
    const sa = `system:serviceaccount:${releaseNs}:${release}`;
    const can = (...args: string[]) => canI(admin, sa, args);
    for (const verb of ["get", "list", "watch", "create", "patch", "update", "delete"])
      expect(await can(verb, "secrets", "-n", "kube-system"), `${verb} secrets in kube-system`).toBe(false);
    expect(await can("list", "secrets", "--all-namespaces")).toBe(false);
    expect(await can("get", "secrets", "-n", releaseNs)).toBe(false);
    expect(await can("get", `secrets/${release}-seal-key`, "-n", releaseNs)).toBe(true);
    expect(await can("update", `secrets/${release}-seal-key`, "-n", releaseNs)).toBe(false);
    expect(await can("delete", `secrets/${release}-seal-key`, "-n", releaseNs)).toBe(false);
    expect(await can("list", "secrets", "-n", mailNs)).toBe(true);
    expect(await can("update", "secrets", "-n", mailNs)).toBe(false);
    expect(await can("update", "secrets/dovecot-tls", "-n", passdbNs)).toBe(false);
    expect(await can("delete", "secrets/dovecot-tls", "-n", passdbNs)).toBe(false);
    for (const forbidden of [
      ["create", "clusterrolebindings"],
      ["create", "rolebindings", "-n", mailNs],
      ["bind", "clusterroles"],
      ["escalate", "clusterroles"],
      ["impersonate", "users"],
      ["create", "serviceaccounts/token", "-n", releaseNs],
      ["create", "pods", "-n", mailNs],
      ["patch", "validatingadmissionpolicies.admissionregistration.k8s.io"],
      ["delete", "validatingadmissionpolicybindings.admissionregistration.k8s.io"],
    ])
      expect(await can(...forbidden), forbidden.join(" ")).toBe(false);
  });

  it("with allNamespaces, lets the admission policy refuse its writes to foreign Secrets, kube-system's included", async () => {
    const [releaseNs, passdbNs] = [await namespace("sec-rbac-all"), await namespace("sec-rbac-all-passdb")];
    const release = `sec-${hex()}`;
    const result = await install(release, releaseNs, {
      allNamespaces: true,
      passdb: { namespace: passdbNs, shards: 4 },
      password: { argon2: testArgon2 },
    });
    expect(result.code, result.stderr).toBe(0);
    const sa = `system:serviceaccount:${releaseNs}:${release}`;
    const operator = asUser(admin, sa);
    // The price of every namespace, which the policy cannot lower: RBAC grants reading every Secret.
    expect(await canI(admin, sa, ["list", "secrets", "--all-namespaces"])).toBe(true);
    expect(await canI(admin, sa, ["patch", "secrets", "-n", "kube-system"])).toBe(true);

    const victim = `sec-victim-${hex()}`;
    await admin.ok(["create", "secret", "generic", victim, "-n", "kube-system", "--from-literal=token=t"]);
    disposers.push(() => admin.run(["delete", "secret", victim, "-n", "kube-system", "--ignore-not-found"]));
    const secret = (name: string, labels: Record<string, string>) =>
      yamlOf([
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name, namespace: "kube-system", labels },
          stringData: { k: "v" },
        },
      ]);
    const ours = { "app.kubernetes.io/managed-by": "devicepass" };
    // The policy is enforced a moment after it is created.
    await eventually(async () => {
      const planted = await operator.run(["create", "-f", "-"], secret(`planted-${hex()}`, {}));
      expect(planted.code).not.toBe(0);
      expect(planted.stderr).toContain("the devicepass operator may write only its own Secrets");
    });
    // A credential or an invitation link Secret only with its MailDevice as owner.
    for (const component of ["credentials", "invitation-link"]) {
      const planted = await operator.run(
        ["create", "-f", "-"],
        secret(`planted-${hex()}`, { ...ours, "app.kubernetes.io/component": component }),
      );
      expect(planted.code, component).not.toBe(0);
      expect(planted.stderr).toContain(
        "a devicepass credential or invitation link Secret must be owned by its MailDevice",
      );
    }
    const shard = await operator.run(
      ["create", "-f", "-"],
      secret("devicepass-passdb-00", { ...ours, "app.kubernetes.io/component": "passdb" }),
    );
    expect(shard.code).not.toBe(0);
    expect(shard.stderr).toContain(`devicepass writes database shards only in namespace ${passdbNs}`);
    const relabel = await operator.run([
      "label", "secret", victim, "-n", "kube-system",
      "app.kubernetes.io/managed-by=devicepass", "app.kubernetes.io/component=seal-key",
    ]); // prettier-ignore
    expect(relabel.code).not.toBe(0);
    expect(relabel.stderr).toContain(
      "the devicepass operator may change only Secrets that are already its own",
    );
    const annotate = await operator.run(["annotate", "secret", victim, "-n", "kube-system", "x=y"]);
    expect(annotate.code).not.toBe(0);
    const removed = await operator.run(["delete", "secret", victim, "-n", "kube-system"]);
    expect(removed.code).not.toBe(0);
    expect(removed.stderr).toContain("the devicepass operator may write only its own Secrets");
    const left = await admin.json<{ metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } }>([
      "get", "secret", victim, "-n", "kube-system",
    ]); // prettier-ignore
    expect(left.metadata.labels ?? {}).toEqual({});
    expect(left.metadata.annotations?.x).toBeUndefined();
  });
});

// The install manifests: charts/ matches its source, the Deployment is locked down, the RBAC
// rules are exactly the listed ones, and the Deployment's command line is one the operator parses.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { App, Chart } from "cdk8s";
import { parse, parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { parseCommandLine } from "../config.ts";
import { parsePortalCommandLine } from "../portal/main.ts";
import { chartFiles, readDovecotFiles, valuesYaml } from "./chart.ts";
import { DevicepassInstall } from "./manifests.ts";
import { defaultValues, parseValues, type ValuesInput } from "./values.ts";
import { appVersion } from "./version.ts";

const root = join(import.meta.dirname, "..", "..", "..");

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

/** The manifests for `values`; without a choice of namespaces, the one namespace "mail". */
function synth(values: ValuesInput = {}): K8sObject[] {
  const chart = new Chart(new App(), "test");
  const scope = values.allNamespaces || values.watchNamespaces ? {} : { watchNamespaces: ["mail"] };
  new DevicepassInstall(chart, "devicepass", { values: { ...scope, ...values } });
  return chart.toJson() as K8sObject[];
}

function find(objects: K8sObject[], kind: string, name: string, namespace?: string): K8sObject {
  const found = objects.find(
    (o) =>
      o.kind === kind &&
      o.metadata.name === name &&
      (namespace === undefined || o.metadata.namespace === namespace),
  );
  if (!found) throw new Error(`no ${kind} ${namespace ?? ""}/${name}`);
  return found;
}

interface Container {
  args: string[];
  securityContext: Record<string, unknown>;
  resources: { requests?: Record<string, string> };
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  ports: { name: string; containerPort: number }[];
  volumeMounts: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  securityContext: Record<string, unknown>;
  automountServiceAccountToken: boolean;
  serviceAccountName: string;
  terminationGracePeriodSeconds: number;
  volumes: { name: string; secret?: { secretName: string } }[];
}
function deploymentOf(objects: K8sObject[]) {
  const d = find(objects, "Deployment", "devicepass") as K8sObject & {
    spec: { replicas: number; strategy: { type: string }; template: { spec: PodSpec } };
  };
  return { deployment: d, pod: d.spec.template.spec, container: d.spec.template.spec.containers[0]! };
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

describe("charts/", () => {
  it("matches operator/src/install (run `npm run generate` after changing it or examples/dovecot/)", () => {
    const files = chartFiles(readDovecotFiles(root));
    for (const [name, text] of Object.entries(files))
      expect(readFileSync(join(root, "charts", name), "utf8"), `charts/${name} drifted`).toBe(text);
    const onDisk = listFiles(join(root, "charts")).map((p) => relative(join(root, "charts"), p));
    expect(onDisk.sort()).toEqual(Object.keys(files).sort());
  });

  it("carries package.json's version", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    expect(appVersion).toBe(pkg.version);
  });

  it("has a values.yaml that holds exactly the schema's defaults", () => {
    expect(parse(valuesYaml())).toEqual(defaultValues());
  });

  it("has a plain install manifest with the namespace first, then the CRDs", () => {
    const text = readFileSync(join(root, "charts", "devicepass-install.yaml"), "utf8");
    const objects = parseAllDocuments(text).map((d) => d.toJS() as K8sObject);
    expect(objects[0]).toMatchObject({ kind: "Namespace", metadata: { name: "devicepass-system" } });
    expect(objects[1]?.kind).toBe("CustomResourceDefinition");
    expect(objects.filter((o) => o.kind === "CustomResourceDefinition").length).toBe(
      readdirSync(join(root, "crds")).length,
    );
  });
});

describe("the operator's Deployment", () => {
  it("runs several replicas with a PodDisruptionBudget that lets one go at a time", () => {
    const objects = synth({ replicas: 3 });
    expect(deploymentOf(objects).deployment.spec.replicas).toBe(3);
    expect(find(objects, "PodDisruptionBudget", "devicepass")).toMatchObject({
      spec: { maxUnavailable: 1, selector: { matchLabels: { "app.kubernetes.io/name": "devicepass" } } },
    });
  });

  it("runs one non-root replica with a read-only root filesystem, requests and probes", () => {
    const objects = synth();
    const { deployment, pod, container } = deploymentOf(objects);
    expect(deployment.spec.replicas).toBe(1);
    // Leader election makes an overlapping rollout safe: the new pod waits as a standby.
    expect(deployment.spec.strategy.type).toBe("RollingUpdate");
    expect(parseCommandLine(container.args, {}).leaderElection).toEqual({
      enabled: true,
      namespace: "devicepass-system",
      name: "devicepass-leader",
    });
    expect(objects.filter((o) => o.kind === "PodDisruptionBudget")).toEqual([]);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(Number(pod.securityContext.runAsUser)).toBeGreaterThan(0);
    expect(container.resources.requests).toEqual({ cpu: "100m", memory: "256Mi" });
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "health" });
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "health" });
    expect(container.ports).toEqual([
      { name: "metrics", containerPort: 8080, protocol: "TCP" },
      { name: "health", containerPort: 8081, protocol: "TCP" },
    ]);
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(pod.serviceAccountName).toBe("devicepass");
    // V8's heap follows the container's memory limit, not the node's memory; malloc gives memory back.
    expect((container as unknown as { env: { name: string; value: string }[] }).env).toEqual([
      { name: "NODE_OPTIONS", value: "--max-old-space-size-percentage=50 --max-semi-space-size=4" },
      { name: "MALLOC_TRIM_THRESHOLD_", value: "131072" },
    ]);
    // The operator drains for up to 30 s (--graceful-shutdown-timeout) before the kubelet's SIGKILL.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(30);
  });

  it("passes the values as flags that the operator's own parser accepts", () => {
    const values: ValuesInput = {
      watchNamespaces: ["mail", "team-a"],
      passdb: { namespace: "dovecot", secretPrefix: "pdb", shards: 8 },
      password: { length: 32, argon2: { memoryKiB: 65536, iterations: 3, parallelism: 2 } },
      defaultClientSettings: { smtp: { host: "smtp.example.com", port: 587, security: "STARTTLS" } },
      dovecot: { doveadmUrl: "http://dovecot.mail:8080/doveadm/v1", apiKeySecret: { name: "doveadm" } },
      metrics: { port: 9090 },
      health: { port: 9091 },
      logLevel: "debug",
      requireMailDomain: false,
    };
    const { pod, container } = deploymentOf(synth(values));
    const cli = parseCommandLine(container.args, {});
    expect(cli.config).toMatchObject({
      namespaces: ["mail", "team-a"],
      passdbNamespace: "dovecot",
      passdbSecretPrefix: "pdb",
      passdbShards: 8,
      passwordLength: 32,
      argon2: { memoryCost: 65536, timeCost: 3, parallelism: 2 },
      defaultClientSettings: values.defaultClientSettings,
      requireMailDomain: false,
      doveadm: {
        url: "http://dovecot.mail:8080/doveadm/v1",
        apiKeyFile: "/etc/devicepass/doveadm/api-key",
        repeatAfterMs: 0,
      },
    });
    expect(cli).toMatchObject({ metricsAddr: ":9090", healthAddr: ":9091", logLevel: "debug" });
    // The key file is the mounted Secret's.
    expect(pod.volumes.find((v) => v.name === "doveadm-api-key")?.secret?.secretName).toBe("doveadm");
    expect(container.volumeMounts).toContainEqual(
      expect.objectContaining({ name: "doveadm-api-key", mountPath: "/etc/devicepass/doveadm" }),
    );
  });

  it("passes the portal's origin and the SMTP relay, its credentials mounted from a Secret", () => {
    const none = parseCommandLine(deploymentOf(synth({ watchNamespaces: ["mail"] })).container.args, {});
    expect([none.config.portalUrl, none.config.smtp]).toEqual([undefined, undefined]);
    const { pod, container } = deploymentOf(
      synth({
        watchNamespaces: ["mail"],
        portal: { enabled: true, publicUrl: "https://portal.example.com" },
        smtp: {
          host: "smtp.example.com",
          security: "TLS",
          from: "devicepass <noreply@example.com>",
          credentialsSecret: "relay",
        },
      }),
    );
    const cli = parseCommandLine(container.args, {});
    expect(cli.config.portalUrl).toBe("https://portal.example.com");
    expect(cli.config.smtp).toEqual({
      host: "smtp.example.com",
      port: 465,
      security: "tls",
      from: "devicepass <noreply@example.com>",
      credentialsDir: "/etc/devicepass/smtp",
      caFile: undefined,
    });
    expect(pod.volumes.find((v) => v.name === "smtp-credentials")?.secret?.secretName).toBe("relay");
    expect(container.volumeMounts).toContainEqual(
      expect.objectContaining({
        name: "smtp-credentials",
        mountPath: "/etc/devicepass/smtp",
        readOnly: true,
      }),
    );
    expect(() => parseValues({ watchNamespaces: ["m"], smtp: { host: "smtp.example.com" } })).toThrow(
      /smtp.from is required with smtp.host/,
    );
  });

  it("watches the listed namespaces, or every one with allNamespaces, and keeps its seal key at home", () => {
    const scoped = parseCommandLine(deploymentOf(synth({ watchNamespaces: ["mail"] })).container.args, {});
    expect(scoped.config.namespaces).toEqual(["mail"]);
    const { container } = deploymentOf(synth({ allNamespaces: true }));
    const cli = parseCommandLine(container.args, {});
    expect(cli.config.namespaces).toBeUndefined();
    expect(cli.config.passdbNamespace).toBe("devicepass-system");
    expect(cli.config.operatorNamespace).toBe("devicepass-system");
    expect(cli.config.sealKeySecret).toEqual({ namespace: "devicepass-system", name: "devicepass-seal-key" });
    expect(cli.config.doveadm).toBeUndefined();
  });

  it("refuses values that break a rule with the rule's message, and unknown values", () => {
    expect(() =>
      parseValues({ watchNamespaces: ["m"], dovecot: { doveadmUrl: "http://d/doveadm/v1" } }),
    ).toThrow(/apiKeySecret.name is required/);
    expect(() => parseValues({})).toThrow(/set watchNamespaces .* or allNamespaces=true/);
    expect(() => parseValues({ watchNamespaces: ["m"], allNamespaces: true })).toThrow(/exclude each other/);
    expect(() => parseValues({ watchNamespaces: ["m"], passdb: { namespace: "m" } })).toThrow(
      /passdb.namespace must hold nothing but the password database/,
    );
    expect(() => parseValues({ watchNamespace: ["typo"] } as ValuesInput)).toThrow();
  });
});

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
const rulesOf = (o: K8sObject) => (o as unknown as { rules: Rule[] }).rules;

describe("RBAC", () => {
  it("grants the operator exactly the verbs it uses, and no wildcard", () => {
    const objects = synth({ watchNamespaces: ["mail"], passdb: { shards: 2 } });
    expect(rulesOf(find(objects, "ClusterRole", "devicepass-operator"))).toEqual([
      {
        apiGroups: ["mail.devicepass.io"],
        resources: ["mailaddresses", "maildevices"],
        verbs: ["get", "list", "watch", "patch"],
      },
      {
        apiGroups: ["mail.devicepass.io"],
        resources: ["mailaddresses/status", "maildevices/status"],
        verbs: ["patch"],
      },
      {
        apiGroups: [""],
        resources: ["secrets"],
        verbs: ["get", "list", "watch", "create", "patch", "delete"],
      },
      { apiGroups: [""], resources: ["events"], verbs: ["create"] },
    ]);
    expect(rulesOf(find(objects, "ClusterRole", "devicepass-domains"))).toEqual([
      { apiGroups: ["mail.devicepass.io"], resources: ["maildomains"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["mail.devicepass.io"], resources: ["maildomains/status"], verbs: ["patch"] },
      { apiGroups: [""], resources: ["namespaces"], verbs: ["get", "list", "watch"] },
    ]);
    const shardRules = rulesOf(find(objects, "Role", "devicepass-passdb", "devicepass-system"));
    expect(shardRules[0]).toEqual({
      apiGroups: [""],
      resources: ["secrets"],
      verbs: ["get", "list", "watch", "create"],
    });
    // Every name a shard may have (so shards beyond a lowered count can go), and nothing else.
    expect(shardRules[1]).toMatchObject({
      apiGroups: [""],
      resources: ["secrets"],
      verbs: ["update", "delete"],
    });
    expect(shardRules[1]!.resourceNames).toHaveLength(256);
    expect(shardRules[1]!.resourceNames!.slice(0, 2)).toEqual([
      "devicepass-passdb-00",
      "devicepass-passdb-01",
    ]);
    expect(shardRules[1]!.resourceNames!.every((n) => /^devicepass-passdb-\d{2,3}$/.test(n))).toBe(true);
    // The passdb-sync reports, read by the last-used controller.
    expect(shardRules[2]).toEqual({
      apiGroups: [""],
      resources: ["configmaps"],
      verbs: ["get", "list", "watch"],
    });
    expect(rulesOf(find(objects, "Role", "devicepass-operator-namespace", "devicepass-system"))).toEqual([
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
      { apiGroups: [""], resources: ["secrets"], verbs: ["get"], resourceNames: ["devicepass-seal-key"] },
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
      // Invitation records and the autoconfig ConfigMap (an admission policy keeps the writes to those).
      {
        apiGroups: [""],
        resources: ["configmaps"],
        verbs: ["get", "list", "watch", "create", "update", "delete"],
      },
      {
        apiGroups: [""],
        resources: ["configmaps"],
        verbs: ["patch"],
        resourceNames: ["devicepass-autoconfig"],
      },
    ]);
    const everything = objects.filter((o) => "rules" in o).flatMap(rulesOf);
    expect(everything.flatMap((r) => [...r.verbs, ...r.resources, ...r.apiGroups])).not.toContain("*");
  });

  it("gives a passdb-sync sidecar read access to the shards by name and its report, only when enabled", () => {
    expect(synth().filter((o) => o.metadata.name.includes("passdb-sync"))).toEqual([]);
    const objects = synth({
      passdb: { shards: 2, namespace: "mail-db" },
      passdbSync: { enabled: true, namespace: "dovecot" },
    });
    expect(rulesOf(find(objects, "Role", "devicepass-passdb-sync", "mail-db"))).toEqual([
      {
        apiGroups: [""],
        resources: ["secrets"],
        verbs: ["list", "watch"],
        resourceNames: ["devicepass-passdb-00", "devicepass-passdb-01"],
      },
      {
        apiGroups: [""],
        resources: ["configmaps"],
        verbs: ["patch"],
        resourceNames: ["devicepass-passdb-sync"],
      },
    ]);
    const binding = find(objects, "RoleBinding", "devicepass-passdb-sync", "mail-db") as K8sObject & {
      subjects: { kind: string; name: string; namespace: string }[];
    };
    expect(binding.subjects).toEqual([
      expect.objectContaining({ kind: "ServiceAccount", name: "dovecot", namespace: "dovecot" }),
    ]);
    const account = find(objects, "ServiceAccount", "dovecot", "dovecot") as K8sObject & {
      automountServiceAccountToken: boolean;
    };
    expect(account.automountServiceAccountToken).toBe(false);
    const report = find(objects, "ConfigMap", "devicepass-passdb-sync", "mail-db");
    expect(report.metadata.labels).toMatchObject({ "app.kubernetes.io/component": "passdb-sync-report" });
    // An existing ServiceAccount: none created.
    const own = synth({ passdbSync: { enabled: true, serviceAccount: { create: false, name: "imap" } } });
    expect(own.filter((o) => o.kind === "ServiceAccount").map((o) => o.metadata.name)).toEqual([
      "devicepass",
    ]);
  });

  it("gives the sidecar exactly what examples/dovecot/kubernetes/passdb-sync-rbac.yaml gives it", () => {
    const shipped = parseAllDocuments(
      readFileSync(join(root, "examples", "dovecot", "kubernetes", "passdb-sync-rbac.yaml"), "utf8"),
    ).map((d) => d.toJS() as K8sObject);
    const chart = synth({ passdbSync: { enabled: true, namespace: "mail-server" } });
    for (const kind of ["Role", "RoleBinding"]) {
      const ours = find(chart, kind, "devicepass-passdb-sync", "devicepass-system");
      const theirs = find(shipped, kind, "devicepass-passdb-sync", "devicepass-system");
      const { metadata: _a, ...oursBody } = ours;
      const { metadata: _b, ...theirsBody } = theirs;
      // cdk8s writes apiGroup "" on ServiceAccount subjects; the API server treats both alike.
      const subjects = (o: Record<string, unknown>) =>
        ((o.subjects as Record<string, unknown>[] | undefined) ?? []).map(
          ({ apiGroup: _g, ...rest }) => rest,
        );
      expect({ ...theirsBody, subjects: subjects(theirsBody) }).toEqual({
        ...oursBody,
        subjects: subjects(oursBody),
      });
    }
    expect(find(shipped, "ConfigMap", "devicepass-passdb-sync", "devicepass-system").metadata.labels).toEqual(
      {
        "app.kubernetes.io/component": "passdb-sync-report",
      },
    );
  });

  it("binds the Secret rules in the watched namespaces only, or cluster-wide with allNamespaces", () => {
    const scoped = synth({ watchNamespaces: ["mail", "team-a"] });
    const bindings = scoped.filter(
      (o) => (o as { roleRef?: { name: string } }).roleRef?.name === "devicepass-operator",
    );
    expect(bindings.map((b) => `${b.kind} ${b.metadata.namespace}`)).toEqual([
      "RoleBinding mail",
      "RoleBinding team-a",
    ]);
    const all = synth({ allNamespaces: true });
    expect(
      all
        .filter((o) => (o as { roleRef?: { name: string } }).roleRef?.name === "devicepass-operator")
        .map((b) => b.kind),
    ).toEqual(["ClusterRoleBinding"]);
    // Wherever it may write Secrets, an admission policy limits it to devicepass's own.
    for (const objects of [scoped, all]) {
      expect(find(objects, "ValidatingAdmissionPolicy", "devicepass-secret-writes")).toMatchObject({
        spec: {
          matchConditions: [
            {
              expression: "request.userInfo.username == 'system:serviceaccount:devicepass-system:devicepass'",
            },
          ],
        },
      });
      expect(find(objects, "ValidatingAdmissionPolicyBinding", "devicepass-secret-writes")).toMatchObject({
        spec: { policyName: "devicepass-secret-writes", validationActions: ["Deny"] },
      });
    }
  });

  it("aggregates reading devices into view, and changing them into edit and admin, never Secrets", () => {
    const objects = synth();
    const view = find(objects, "ClusterRole", "devicepass-view");
    const edit = find(objects, "ClusterRole", "devicepass-edit");
    expect(view.metadata.labels).toMatchObject({
      "rbac.authorization.k8s.io/aggregate-to-view": "true",
      "rbac.authorization.k8s.io/aggregate-to-edit": "true",
      "rbac.authorization.k8s.io/aggregate-to-admin": "true",
    });
    expect(edit.metadata.labels).not.toHaveProperty(["rbac.authorization.k8s.io/aggregate-to-view"]);
    expect(edit.metadata.labels).toMatchObject({
      "rbac.authorization.k8s.io/aggregate-to-edit": "true",
      "rbac.authorization.k8s.io/aggregate-to-admin": "true",
    });
    for (const role of [view, edit]) {
      expect(rulesOf(role).flatMap((r) => r.resources)).not.toContain("secrets");
      expect(rulesOf(role).flatMap((r) => r.verbs)).not.toContain("*");
    }
    expect(rulesOf(view).flatMap((r) => r.verbs)).toEqual(["get", "list", "watch"]);
    expect(rulesOf(edit).flatMap((r) => r.resources)).toEqual(["mailaddresses", "maildevices"]);
  });
});

describe("the invitation portal's objects", () => {
  const portalValues: ValuesInput = { portal: { enabled: true, publicUrl: "https://portal.example.com" } };

  it("are absent by default, and refused without a public URL", () => {
    expect(synth().filter((o) => o.metadata.name === "devicepass-portal")).toEqual([]);
    expect(() => synth({ portal: { enabled: true } })).toThrow(/portal.publicUrl is required/);
  });

  it("run the operator's image as `portal`, locked down, with a command line the portal parses", () => {
    const objects = synth(portalValues);
    const d = find(objects, "Deployment", "devicepass-portal") as K8sObject & {
      spec: { replicas: number; template: { spec: PodSpec & { securityContext: Record<string, unknown> } } };
    };
    const pod = d.spec.template.spec;
    const container = pod.containers[0]! as Container & { image: string };
    expect(d.spec.replicas).toBe(2);
    expect(container.image).toBe(`devicepass:${appVersion}`);
    expect(container.args[0]).toBe("portal");
    const parsed = parsePortalCommandLine(container.args.slice(1), {});
    expect(parsed).toMatchObject({
      namespace: "devicepass-system",
      listen: ":8080",
      setupMinutes: 10,
      forwardedForHops: 0,
    });
    expect("publicUrl" in parsed && parsed.publicUrl.origin).toBe("https://portal.example.com");
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(pod.serviceAccountName).toBe("devicepass-portal");
    expect(find(objects, "Service", "devicepass-portal")).toBeDefined();
    expect(find(objects, "PodDisruptionBudget", "devicepass-portal")).toBeDefined();
  });

  it("hold get and update of ConfigMaps in the release namespace and watch of one, nothing else", () => {
    const objects = synth(portalValues);
    const roles = objects.filter(
      (o) => ["Role", "ClusterRole"].includes(o.kind) && o.metadata.name.includes("portal"),
    );
    expect(roles.map((r) => [r.kind, r.metadata.namespace])).toEqual([["Role", "devicepass-system"]]);
    expect(roles[0]!.rules).toEqual([
      { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "update"] },
      {
        apiGroups: [""],
        resources: ["configmaps"],
        verbs: ["watch"],
        resourceNames: ["devicepass-autoconfig"],
      },
    ]);
    const bindings = objects.filter(
      (o) => o.kind.endsWith("Binding") && JSON.stringify(o).includes("devicepass-portal"),
    );
    expect(bindings.map((b) => b.kind).sort()).toEqual(["RoleBinding", "ValidatingAdmissionPolicyBinding"]);
    expect(objects.some((o) => o.kind === "Ingress")).toBe(false);
    const withIngress = synth({
      portal: {
        ...portalValues.portal,
        ingress: { enabled: true, host: "portal.example.com", tlsSecret: "tls" },
      },
    });
    expect(find(withIngress, "Ingress", "devicepass-portal").spec).toEqual({
      rules: [
        {
          host: "portal.example.com",
          http: {
            paths: [
              {
                path: "/",
                pathType: "Prefix",
                backend: { service: { name: "devicepass-portal", port: { name: "http" } } },
              },
            ],
          },
        },
      ],
      tls: [{ hosts: ["portal.example.com"], secretName: "tls" }],
    });
  });
});

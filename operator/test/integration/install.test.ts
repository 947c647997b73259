// The Helm chart and the plain install manifest against the real API server: helm lint and
// template, helm install, the operator passing the core flows with nothing but the chart's
// ServiceAccount, and `kubectl auth can-i` for what the operator and namespace users may not do.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { App, Chart } from "cdk8s";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { chartFiles, readDovecotFiles } from "../../src/install/chart.ts";
import { createdByPolicyNames, mutatingPolicyResource } from "../../src/install/admission.ts";
import { servedMutatingPolicyVersion } from "../../harness/admission-policies.ts";
import { DevicepassInstall } from "../../src/install/manifests.ts";
import type { ValuesInput } from "../../src/install/values.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { createLogger } from "../../src/log.ts";
import { defaultConfig } from "../../src/config.ts";
import { loadSealKey } from "../../src/credentials/seal-key-secret.ts";
import { Operator } from "../../src/operator.ts";
import { adminKubectl, eventually, withNamespace } from "../support.ts";
import { accepts, devicePassword, passdbEntries, testArgon2 } from "../operator-support.ts";
import {
  canI,
  chartDir,
  helmFor,
  normalized,
  parseManifests,
  repoRoot,
  serviceAccountKubeconfig,
  valuesFile,
  type Helm,
  type K8sObject,
} from "../install-support.ts";

const kubectl = adminKubectl();
// Without a cluster, helm assumes Kubernetes v1.20: render for the API server under test instead.
let kubeVersion: string[];
let helm: Helm;

beforeAll(async () => {
  helm = await helmFor();
  const version = await kubectl.json<{ serverVersion: { gitVersion: string } }>(["version"]);
  // and for one that serves MutatingAdmissionPolicy v1, as the plain install manifest assumes
  // (helm's own list of API versions lacks it).
  kubeVersion = [
    "--kube-version",
    version.serverVersion.gitVersion,
    "--api-versions",
    mutatingPolicyResource("v1"),
  ];
});

function synth(values: ValuesInput, release: { name: string; namespace: string }): K8sObject[] {
  const chart = new Chart(new App(), "test");
  new DevicepassInstall(chart, "devicepass", { values, release, dovecotFiles: readDovecotFiles(repoRoot) });
  return chart.toJson() as K8sObject[];
}

describe("the Helm chart", () => {
  it("passes helm lint --strict, with every namespace and with every option set", async () => {
    await helm.ok(["lint", "--strict", chartDir, "--set", "allNamespaces=true", ...kubeVersion.slice(0, 2)]); // lint takes no --api-versions
    const values = await valuesFile({
      watchNamespaces: ["mail"],
      dovecot: { doveadmUrl: "http://dovecot.mail:8080/doveadm/v1", apiKeySecret: { name: "doveadm" } },
      passdbSync: { enabled: true, namespace: "dovecot" },
    });
    await helm.ok(["lint", "--strict", chartDir, "-f", values, ...kubeVersion.slice(0, 2)]);
  });

  it("renders with its defaults and allNamespaces exactly charts/devicepass-install.yaml (less the Namespace)", async () => {
    const rendered = parseManifests(
      await helm.ok([
        "template",
        "devicepass",
        chartDir,
        "-n",
        "devicepass-system",
        "--include-crds",
        "--set",
        "allNamespaces=true",
        ...kubeVersion,
      ]),
    );
    const manifest = parseManifests(
      await readFile(join(repoRoot, "charts", "devicepass-install.yaml"), "utf8"),
    );
    expect(normalized(rendered)).toEqual(normalized(manifest.filter((o) => o.kind !== "Namespace")));
  });

  const valueSets: [string, ValuesInput][] = [
    ["defaults, every namespace", { allNamespaces: true }],
    [
      "watched namespaces, a database elsewhere, Dovecot and every pod option",
      {
        image: { repository: "registry.example.com/devicepass", tag: "1.2.3", pullPolicy: "Always" },
        imagePullSecrets: ["registry"],
        watchNamespaces: ["mail", "team-a"],
        passdb: { namespace: "dovecot", secretPrefix: "pdb", shards: 3 },
        password: { length: 32, argon2: { memoryKiB: 2_000_000, iterations: 3, parallelism: 4 } },
        defaultClientSettings: {
          smtp: { host: "smtp.example.com", port: 587, security: "STARTTLS" },
          imap: { host: "imap.example.com", port: 993, security: "SSL/TLS" },
        },
        dovecot: {
          doveadmUrl: "http://dovecot.mail:8080/doveadm/v1",
          apiKeySecret: { name: "doveadm", key: "key" },
          kickRepeatSeconds: 0,
          configMap: { enabled: false },
        },
        logLevel: "debug",
        health: { port: 9091 },
        metrics: { port: 9090 },
        resources: { requests: { cpu: "1", memory: "1Gi" } },
        podAnnotations: { "prometheus.io/scrape": "true" },
        nodeSelector: { "kubernetes.io/os": "linux" },
        tolerations: [{ key: "mail", operator: "Exists", effect: "NoSchedule" }],
        affinity: { nodeAffinity: {} },
      },
    ],
    [
      "the invitation portal with an Ingress",
      {
        watchNamespaces: ["mail"],
        portal: {
          enabled: true,
          publicUrl: "https://portal.example.com",
          replicas: 3,
          forwardedForHops: 1,
          ingress: {
            enabled: true,
            className: "nginx",
            host: "portal.example.com",
            tlsSecret: "portal-tls",
            annotations: { a: "b" },
          },
        },
      },
    ],
    [
      "the invitation portal, one replica, no Ingress class or TLS, no policy",
      {
        allNamespaces: true,
        portal: {
          enabled: true,
          publicUrl: "http://p.test",
          replicas: 1,
          ingress: { enabled: true, host: "p.test" },
          admissionPolicy: { enabled: false },
        },
      },
    ],
    [
      "the passdb-sync sidecar's access, Dovecot in a namespace of its own",
      {
        watchNamespaces: ["mail"],
        passdb: { namespace: "mail-db", shards: 5 },
        passdbSync: { enabled: true, namespace: "dovecot", reportName: "sync-report" },
      },
    ],
    [
      "the passdb-sync sidecar's access with an existing ServiceAccount",
      { allNamespaces: true, passdbSync: { enabled: true, serviceAccount: { create: false, name: "imap" } } },
    ],
  ];
  for (const [name, values] of valueSets) {
    it(`renders the same objects as the cdk8s construct: ${name}`, async () => {
      const release = { name: "mail-auth", namespace: "auth" };
      const rendered = parseManifests(
        await helm.ok(["template", release.name, chartDir, "-n", release.namespace, "-f", await valuesFile(values), ...kubeVersion]),
      ); // prettier-ignore
      expect(normalized(rendered)).toEqual(normalized(synth(values, release)));
    });
  }

  it("installs the mutating created-by policy in the newest version the cluster serves, or none", async () => {
    const kinds = async (apiVersions: string[]) => {
      const args = [
        "template",
        "x",
        chartDir,
        "--set",
        "allNamespaces=true",
        "--kube-version",
        kubeVersion[1]!,
      ];
      for (const v of apiVersions) args.push("--api-versions", v);
      return parseManifests(await helm.ok(args))
        .filter((o) => o.kind.endsWith("AdmissionPolicy") || o.kind.endsWith("AdmissionPolicyBinding"))
        .filter((o) => o.metadata.name.includes("created-by")) // not the operator's secret-writes policy
        .map((o) => `${o.apiVersion} ${o.kind}`)
        .sort();
    };
    const validating = [
      "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy",
      "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding",
    ];
    const mutating = (v: string) => [
      `admissionregistration.k8s.io/${v} MutatingAdmissionPolicy`,
      `admissionregistration.k8s.io/${v} MutatingAdmissionPolicyBinding`,
    ];
    expect(await kinds([mutatingPolicyResource("v1"), mutatingPolicyResource("v1beta1")])).toEqual(
      [...mutating("v1"), ...validating].sort(),
    );
    expect(await kinds([mutatingPolicyResource("v1beta1")])).toEqual(
      [...mutating("v1beta1"), ...validating].sort(),
    );
    expect(await kinds([])).toEqual(validating);
  });

  it("keeps configuration files literal, even where they look like Go templates", async () => {
    const files = { "odd.conf": 'a = {{ .Values }}\nb = "%{user}" }} {{\n' };
    const dir = await mkdtemp(join(tmpdir(), "devicepass-chart-"));
    for (const [name, text] of Object.entries(chartFiles(files))) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), text);
    }
    const rendered = parseManifests(
      await helm.ok([
        "template",
        "x",
        join(dir, "devicepass"),
        "--set",
        "allNamespaces=true",
        ...kubeVersion,
      ]),
    );
    expect(rendered.find((o) => o.kind === "ConfigMap")).toMatchObject({ data: files });
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses values its schema or templates reject", async () => {
    const typo = await helm.run([
      "template",
      "x",
      chartDir,
      "--set",
      "watchNamespace={mail}",
      ...kubeVersion,
    ]);
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/watchNamespace/);
    const noKey = await helm.run([
      "template",
      "x",
      chartDir,
      "--set",
      "watchNamespaces={mail},dovecot.doveadmUrl=http://d",
      ...kubeVersion,
    ]);
    expect(noKey.code).not.toBe(0);
    expect(noKey.stderr).toMatch(/dovecot.apiKeySecret.name is required with dovecot.doveadmUrl/);
    // No choice of namespaces: the install says what to set, rather than take every namespace.
    const noScope = await helm.run(["template", "x", chartDir, ...kubeVersion]);
    expect(noScope.code).not.toBe(0);
    expect(noScope.stderr).toMatch(
      /set watchNamespaces to the namespaces whose MailDevices devicepass manages, or allNamespaces=true/,
    );
    const databaseAmongTenants = await helm.run([
      "template", "x", chartDir, "--set", "watchNamespaces={mail},passdb.namespace=mail", ...kubeVersion,
    ]); // prettier-ignore
    expect(databaseAmongTenants.stderr).toMatch(
      /passdb.namespace must hold nothing but the password database/,
    );
  });
});

describe("helm install, and the operator as the chart's ServiceAccount", () => {
  const release = `dp-${randomBytes(3).toString("hex")}`;
  const serviceAccount = (ns: string) => `system:serviceaccount:${ns}:${release}`;
  const disposers: (() => Promise<void>)[] = [];
  let releaseNs: string;
  let mailNs: string;
  let passdbNs: string;
  let otherNs: string;
  let installOutput: { stdout: string; stderr: string };

  beforeAll(async () => {
    const create = async (prefix: string) => {
      const ns = await withNamespace(kubectl, prefix);
      disposers.push(ns.dispose);
      return ns.name;
    };
    releaseNs = await create("install");
    mailNs = await create("install-mail");
    passdbNs = await create("install-passdb");
    otherNs = await create("install-other");
  });

  afterAll(async () => {
    await helm.run(["uninstall", release, "-n", releaseNs, "--wait=false"]);
    for (const dispose of disposers) await dispose();
  });

  it("installs into a namespace that enforces Pod Security restricted", async () => {
    await kubectl.ok([
      "label", "namespace", releaseNs,
      "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/warn=restricted",
    ]); // prettier-ignore
    const values = await valuesFile({
      watchNamespaces: [mailNs],
      passdb: { namespace: passdbNs, shards: 4 },
      password: { argon2: testArgon2Values },
      // The portal's pods meet Pod Security restricted too.
      portal: {
        enabled: true,
        publicUrl: "https://portal.example.com",
        ingress: { enabled: true, host: "portal.example.com" },
      },
    });
    const result = await helm.run(["install", release, chartDir, "-n", releaseNs, "-f", values]);
    expect(result.code, result.stderr).toBe(0);
    installOutput = result;
    expect(result.stderr).not.toMatch(/PodSecurity|violate/);
    expect(result.stdout).toMatch(new RegExp(`manages MailAddresses and MailDevices in: ${mailNs}`));
    const deployment = await kubectl.json<{ spec: { replicas: number } }>([
      "get", "deployment", release, "-n", releaseNs,
    ]); // prettier-ignore
    expect(deployment.spec.replicas).toBe(1);
    await kubectl.ok(["get", "configmap", `${release}-dovecot`, "-n", passdbNs]);
    await kubectl.ok(["get", "rolebinding", `${release}-operator`, "-n", mailNs]);
    for (const kind of ["deployment", "service", "ingress", "role", "rolebinding", "serviceaccount"])
      await kubectl.ok(["get", kind, `${release}-portal`, "-n", releaseNs]);
    await kubectl.ok(["get", "validatingadmissionpolicy", `${release}-portal-${releaseNs}`]);
    const portal = `system:serviceaccount:${releaseNs}:${release}-portal`;
    expect(await canI(kubectl, portal, ["update", "configmaps", "-n", releaseNs])).toBe(true);
    for (const args of [
      ["list", "configmaps", "-n", releaseNs],
      ["get", "secrets", "-n", releaseNs],
      ["get", "configmaps", "-n", mailNs],
    ])
      expect(await canI(kubectl, portal, args), args.join(" ")).toBe(false);
    // The created-by policies, the mutating one in the version this API server serves.
    const served = await servedMutatingPolicyVersion(kubectl);
    expect(served).toBeDefined();
    const names = createdByPolicyNames(release);
    for (const kind of ["mutatingadmissionpolicy", "mutatingadmissionpolicybinding"])
      await kubectl.ok(["get", `${kind}.${served}.admissionregistration.k8s.io`, names.mutating]);
    for (const kind of ["validatingadmissionpolicy", "validatingadmissionpolicybinding"])
      await kubectl.ok(["get", `${kind}.v1.admissionregistration.k8s.io`, names.validating]);
  });

  it("passes the core flows with the ServiceAccount's token: RBAC is enough", async () => {
    expect(installOutput).toBeDefined();
    const kubeconfig = await serviceAccountKubeconfig(kubectl, releaseNs, release);
    const client = await KubeClient.fromKubeconfig(kubeconfig, "devicepass-install-test");
    const forbidden: string[] = [];
    client.observer = (verb, path, status) => {
      if (status === 403) forbidden.push(`${verb} ${path}`);
    };
    const logs: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(chunk.toString("utf8"));
        done();
      },
    });
    // As the chart runs it: its own namespace the release namespace, its seal key there.
    const sealKeySecret = { namespace: releaseNs, name: `${release}-seal-key` };
    const operator = new Operator({
      client,
      log: createLogger("info", sink),
      seal: await loadSealKey(client, sealKeySecret),
      config: defaultConfig({
        namespaces: [mailNs],
        operatorNamespace: releaseNs,
        sealKeySecret,
        passdbNamespace: passdbNs,
        passdbShards: 4,
        argon2: testArgon2,
        // MailDomains are cluster-wide and other test files run beside this one: not required here.
        requireMailDomain: false,
      }),
    });
    await operator.start();
    try {
      await kubectl.ok(["apply", "-n", mailNs, "-f", join(repoRoot, "examples", "mail")]);
      await kubectl.ok([
        "wait",
        "-n",
        mailNs,
        "--for=condition=Ready",
        "--timeout=60s",
        "maildevice",
        "--all",
      ]);
      await kubectl.ok([
        "wait",
        "-n",
        mailNs,
        "--for=condition=Ready",
        "--timeout=60s",
        "mailaddress",
        "alice",
      ]);

      // Rotate (flow 2).
      const before = await devicePassword(kubectl, mailNs, "alice-iphone-mail-credentials");
      await kubectl.ok([
        "annotate", "-n", mailNs, "maildevice", "alice-iphone", "mail.devicepass.io/rotate=r1", "--overwrite",
      ]); // prettier-ignore
      const after = await eventually(async () => {
        const p = await devicePassword(kubectl, mailNs, "alice-iphone-mail-credentials");
        expect(p).not.toBe(before);
        return p;
      });
      await eventually(async () => {
        const entries = await passdbEntries(kubectl, passdbNs);
        expect(await accepts(entries, `${mailNs}/alice-iphone`, after)).toBe(true);
        expect(await accepts(entries, `${mailNs}/alice-iphone`, before)).toBe(false);
      });

      // Delete (flows 3 and 4).
      await kubectl.ok(["delete", "-n", mailNs, "maildevice", "alice-iphone", "--timeout=60s"]);
      expect(
        (await kubectl.run(["get", "secret", "alice-iphone-mail-credentials", "-n", mailNs])).code,
      ).not.toBe(0);
      await kubectl.ok(["delete", "-n", mailNs, "maildevices", "--all", "--timeout=60s"]);
      await eventually(async () => {
        const entries = await passdbEntries(kubectl, passdbNs);
        expect(entries.filter((e) => e.device.startsWith(`${mailNs}/`))).toEqual([]);
      });
      const left = await kubectl.json<{ items: unknown[] }>([
        "get", "secrets", "-n", mailNs, "-l", "app.kubernetes.io/managed-by=devicepass",
      ]); // prettier-ignore
      expect(left.items).toEqual([]);
      expect(forbidden, logs.join("")).toEqual([]);
    } finally {
      await operator.stop();
      await client.close();
    }
  });

  it("keeps the operator to what it needs", async () => {
    const sa = serviceAccount(releaseNs);
    const yes = async (...args: string[]) => expect(await canI(kubectl, sa, args), args.join(" ")).toBe(true);
    const no = async (...args: string[]) => expect(await canI(kubectl, sa, args), args.join(" ")).toBe(false);
    // What it does.
    await yes("list", "secrets", "-n", mailNs);
    await yes("delete", "secrets", "-n", mailNs);
    await yes("patch", "maildevices/status", "-n", mailNs);
    await yes("update", "secrets/devicepass-passdb-03", "-n", passdbNs);
    await yes("create", "leases.coordination.k8s.io", "-n", releaseNs);
    await yes("list", "maildomains.mail.devicepass.io");
    // Secrets outside its namespaces, and other Secrets of the database namespace.
    await no("get", "secrets", "-n", otherNs);
    await no("list", "secrets", "--all-namespaces");
    await no("get", "secrets", "-n", releaseNs);
    await no("update", "secrets/dovecot-tls", "-n", passdbNs);
    await no("patch", "secrets", "-n", passdbNs);
    await no("delete", "secrets", "-n", passdbNs);
    // Its own objects: it never creates, replaces or deletes what users declare.
    await no("create", "maildevices", "-n", mailNs);
    await no("update", "maildevices", "-n", mailNs);
    await no("delete", "mailaddresses", "-n", mailNs);
    await no("update", "maildevices/status", "-n", mailNs);
    await no("list", "maildevices", "-n", otherNs);
    await no("delete", "maildomains.mail.devicepass.io");
    // The cluster.
    await no("delete", "namespaces");
    await no("patch", "namespaces");
    await no("update", "customresourcedefinitions.apiextensions.k8s.io");
    await no("create", "pods", "-n", mailNs);
    await no("create", "leases.coordination.k8s.io", "-n", mailNs);
    await no("create", "clusterrolebindings");
  });

  it("lets namespace viewers see devices but never Secrets; editors change devices, not their status", async () => {
    const viewer = `viewer-${release}`;
    const editor = `editor-${release}`;
    await kubectl.ok([
      "create",
      "rolebinding",
      "viewers",
      "-n",
      mailNs,
      "--clusterrole=view",
      `--user=${viewer}`,
    ]);
    await kubectl.ok([
      "create",
      "rolebinding",
      "editors",
      "-n",
      mailNs,
      "--clusterrole=edit",
      `--user=${editor}`,
    ]);
    // kube-controller-manager aggregates the chart's roles into view and edit.
    await eventually(async () => {
      expect(await canI(kubectl, viewer, ["list", "maildevices", "-n", mailNs])).toBe(true);
      expect(await canI(kubectl, editor, ["create", "maildevices", "-n", mailNs])).toBe(true);
    }, 60_000);
    for (const [verb, resource] of [
      ["get", "maildevices"],
      ["watch", "maildevices"],
      ["list", "mailaddresses"],
    ])
      expect(
        await canI(kubectl, viewer, [verb!, resource!, "-n", mailNs]),
        `viewer ${verb} ${resource}`,
      ).toBe(true);
    for (const [verb, resource] of [
      ["get", "secrets"],
      ["list", "secrets"],
      ["create", "maildevices"],
      ["patch", "maildevices"],
      ["delete", "maildevices"],
    ])
      expect(
        await canI(kubectl, viewer, [verb!, resource!, "-n", mailNs]),
        `viewer ${verb} ${resource}`,
      ).toBe(false);
    for (const verb of ["create", "patch", "update", "delete", "deletecollection"])
      expect(await canI(kubectl, editor, [verb, "maildevices", "-n", mailNs]), `editor ${verb}`).toBe(true);
    expect(await canI(kubectl, editor, ["patch", "maildevices", "--subresource=status", "-n", mailNs])).toBe(
      false,
    );
    // MailDomains stay with cluster administrators: namespace users read them, never change them.
    for (const user of [viewer, editor]) {
      expect(await canI(kubectl, user, ["get", "maildomains"]), `${user} get maildomains`).toBe(true);
      for (const verb of ["create", "patch", "delete"])
        expect(await canI(kubectl, user, [verb, "maildomains"]), `${user} ${verb} maildomains`).toBe(false);
    }

    // As the users type it.
    await kubectl.ok([
      "apply",
      "-n",
      mailNs,
      "-f",
      join(repoRoot, "examples", "mail", "alice.yaml"),
      `--as=${editor}`,
    ]);
    await kubectl.ok(["get", "mailaddresses", "-n", mailNs, `--as=${viewer}`]);
    const denied = await kubectl.run(["get", "secrets", "-n", mailNs, `--as=${viewer}`]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/forbidden/);
    const annotate = await kubectl.run([
      "annotate", "-n", mailNs, "mailaddress", "alice", "mail.devicepass.io/rotate=1", `--as=${viewer}`,
    ]); // prettier-ignore
    expect(annotate.stderr).toMatch(/forbidden/);
    await kubectl.ok([
      "annotate", "-n", mailNs, "mailaddress", "alice", "mail.devicepass.io/rotate=1", `--as=${editor}`,
    ]); // prettier-ignore
  });
});

/** testArgon2 in the chart's terms. */
const testArgon2Values = {
  memoryKiB: testArgon2.memoryCost,
  iterations: testArgon2.timeCost,
  parallelism: testArgon2.parallelism,
};

describe("the plain install manifest", () => {
  it("applies with kubectl; its operator, watching every namespace, is bound cluster-wide", async () => {
    const manifest = join(repoRoot, "charts", "devicepass-install.yaml");
    const result = await kubectl.run(["apply", "--server-side", "-f", manifest]);
    if ((await servedMutatingPolicyVersion(kubectl)) === "v1") {
      expect(result.code, result.stderr).toBe(0);
    } else {
      // Before 1.36 (README): the two MutatingAdmissionPolicy v1 objects are refused, the rest applies.
      const refused = result.stderr.match(/no matches for kind "(\w+)" in version "([\w./]+)"/g) ?? [];
      expect(refused).toEqual([
        'no matches for kind "MutatingAdmissionPolicy" in version "admissionregistration.k8s.io/v1"',
        'no matches for kind "MutatingAdmissionPolicyBinding" in version "admissionregistration.k8s.io/v1"',
      ]);
      expect(result.stderr.replace(/resource mapping not found.*\n.*\n/g, "")).toBe("");
    }
    expect(result.stderr).not.toMatch(/PodSecurity|violate/);
    const sa = "system:serviceaccount:devicepass-system:devicepass";
    // The price of watching every namespace: RBAC cannot select Secrets by label.
    expect(await canI(kubectl, sa, ["list", "secrets", "--all-namespaces"])).toBe(true);
    expect(await canI(kubectl, sa, ["update", "secrets", "-n", "default"])).toBe(false);
    expect(
      await canI(kubectl, sa, ["update", "secrets/devicepass-passdb-63", "-n", "devicepass-system"]),
    ).toBe(true);
    expect(
      await canI(kubectl, sa, ["delete", "secrets/devicepass-passdb-255", "-n", "devicepass-system"]),
    ).toBe(true);
    expect(
      await canI(kubectl, sa, ["update", "secrets/devicepass-passdb-256", "-n", "devicepass-system"]),
    ).toBe(false);
    expect(await canI(kubectl, sa, ["delete", "namespaces"])).toBe(false);

    // RBAC lets it write Secrets everywhere; the admission policy lets it write only its own.
    const victim = await withNamespace(kubectl, "install-victim");
    try {
      await kubectl.ok([
        "create",
        "secret",
        "generic",
        "app-token",
        "-n",
        victim.name,
        "--from-literal=token=t",
      ]);
      await eventually(async () => {
        const write = await kubectl.run([
          "create", "secret", "generic", "planted", "-n", victim.name, "--from-literal=k=v", `--as=${sa}`,
        ]); // prettier-ignore
        expect(write.code).not.toBe(0);
        expect(write.stderr).toContain("the devicepass operator may write only its own Secrets");
      });
      const relabel = await kubectl.run([
        "label", "secret", "app-token", "-n", victim.name,
        "app.kubernetes.io/managed-by=devicepass", "app.kubernetes.io/component=credentials", `--as=${sa}`,
      ]); // prettier-ignore
      expect(relabel.code).not.toBe(0);
      expect(relabel.stderr).toMatch(
        /may change only Secrets that are already its own|must be owned by its MailDevice/,
      );
      const remove = await kubectl.run(["delete", "secret", "app-token", "-n", victim.name, `--as=${sa}`]);
      expect(remove.code).not.toBe(0);
      expect(remove.stderr).toContain("the devicepass operator may write only its own Secrets");
      expect(await kubectl.ok(["get", "secret", "app-token", "-n", victim.name, "-o", "name"])).toContain(
        "app-token",
      );
    } finally {
      await victim.dispose();
    }
  });
});

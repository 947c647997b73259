// The operator's install manifests as a cdk8s construct (cdk8s-plus-27): ServiceAccount, RBAC,
// Deployment and the Dovecot configuration; synthesized into the Helm chart and the plain manifest.
import { ApiObject, Duration, JsonPatch } from "cdk8s";
import * as kplus from "cdk8s-plus-27";
import { Construct } from "constructs";
import { parse } from "yaml";
import { crdFiles } from "../api/crd.ts";
import { invitationNames } from "../api/names.ts";
import { shardName } from "../passdb/format.ts";
import {
  aggregationLabels,
  clusterRules,
  editRules,
  mailDomainReaderRules,
  operatorNamespaceRules,
  passdbRules,
  viewRules,
  watchedNamespaceRules,
  type PolicyRule,
} from "./rbac.ts";
import { passdbSyncAccess } from "./passdb-sync.ts";
import { CreatedByAdmission } from "./admission.ts";
import { appVersion } from "./version.ts";
import { imageOf, imageUser as uid, spreadOverNodes } from "./pod.ts";
import { PortalInstall } from "./portal.ts";
import { configMapWritePolicy, secretWritePolicy } from "./secret-policy.ts";
import { maxShards, parseValues, type Values, type ValuesInput } from "./values.ts";
import { operatorEnvList } from "./runtime-env.ts";
import { PlainWiring, type Release, type Wiring } from "./wiring.ts";

export const defaultRelease: Release = { name: "devicepass", namespace: "devicepass-system" };

/** The operator's seal key Secret in the release namespace. */
export function sealKeySecretName(release: string): string {
  return `${release}-seal-key`;
}

/** Where the doveadm API key Secret is mounted in the operator's container. */
export const doveadmKeyDir = "/etc/devicepass/doveadm";

/** Where the SMTP relay's basic-auth Secret is mounted in the operator's container. */
export const smtpCredentialsDir = "/etc/devicepass/smtp";

export interface DevicepassInstallProps {
  /** Chart values; defaults as in values.yaml. Ignored when `wiring` is given. */
  values?: ValuesInput;
  /** Release name (prefix of object names) and the operator's namespace. */
  release?: Release;
  /** Also a Namespace object for the release namespace (the plain install manifest has one). */
  createNamespace?: boolean;
  /** Also the CustomResourceDefinitions. */
  crds?: boolean;
  /** Files of the Dovecot configuration for the ConfigMap (examples/dovecot/); none: no ConfigMap. */
  dovecotFiles?: Record<string, string>;
  /** @internal How values reach the manifests; the chart generator passes a HelmWiring. */
  wiring?: Wiring;
}

/**
 * Everything that installs the devicepass operator. Each child construct becomes one file of the
 * chart's templates/ (named after its id).
 */
export class DevicepassInstall extends Construct {
  readonly wiring: Wiring;
  readonly serviceAccount: kplus.ServiceAccount;
  readonly deployment: kplus.Deployment;

  constructor(scope: Construct, id: string, props: DevicepassInstallProps = {}) {
    super(scope, id);
    const w = (this.wiring =
      props.wiring ?? new PlainWiring(parseValues(props.values), props.release ?? defaultRelease));
    const { name, namespace } = w.release;

    const selectorLabels = { "app.kubernetes.io/name": "devicepass", "app.kubernetes.io/instance": name };
    const podLabels: Record<string, string> = {
      ...selectorLabels,
      "app.kubernetes.io/version": w.helm ? w.computed(() => appVersion, "$.Chart.AppVersion") : appVersion,
    };
    // Helm's own labels go on the objects, not on the pods: a chart version alone restarts nothing.
    const labels: Record<string, string> = {
      ...podLabels,
      ...(w.helm
        ? {
            "helm.sh/chart": w.computed(() => "", 'printf "%s-%s" $.Chart.Name $.Chart.Version'),
            "app.kubernetes.io/managed-by": w.computed(() => "", "$.Release.Service"),
          }
        : {}),
    };
    const passdbNamespace = w.computed(
      (v) => v.passdb.namespace || namespace,
      "default $.Release.Namespace $.Values.passdb.namespace",
    );

    if (props.createNamespace) {
      const group = new Construct(this, "namespace");
      // Pod Security "restricted": the operator's pod meets it, so the namespace can enforce it.
      new kplus.Namespace(group, "namespace", {
        metadata: {
          name: namespace,
          labels: {
            ...labels,
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
          },
        },
      });
    }
    if (props.crds) {
      const group = new Construct(this, "crds");
      for (const text of Object.values(crdFiles())) {
        const crd = parse(text) as { apiVersion: string; kind: string; metadata: { name: string } };
        new ApiObject(group, crd.metadata.name, crd);
      }
    }

    const saGroup = new Construct(this, "serviceaccount");
    this.serviceAccount = new kplus.ServiceAccount(saGroup, "serviceaccount", {
      metadata: { name, namespace, labels },
      // Only the operator's pod mounts a token (automountServiceAccountToken on the pod).
      automountToken: false,
    });

    this.rbac(w, labels, passdbNamespace);
    const writePolicies = new Construct(this, "secret-policy");
    secretWritePolicy(writePolicies, { release: w.release, labels, passdbNamespace });
    configMapWritePolicy(writePolicies, { release: w.release, labels });
    this.userRoles(labels);
    // Where Dovecot runs: the database namespace, unless passdb-sync lets it run elsewhere.
    const dovecotNamespace = w.computed(
      (v) => v.passdbSync.namespace || v.passdb.namespace || namespace,
      "default (default $.Release.Namespace $.Values.passdb.namespace) $.Values.passdbSync.namespace",
    );
    if (props.dovecotFiles) this.dovecotConfig(w, labels, dovecotNamespace, props.dovecotFiles);
    passdbSyncAccess(this, w, { labels, passdbNamespace, dovecotNamespace, patchFinalJson });
    this.deployment = this.operatorDeployment(w, labels, podLabels, selectorLabels, passdbNamespace);
    this.disruptionBudget(w, labels, selectorLabels);
    new PortalInstall(this, "portal", { wiring: w, labels });
    new CreatedByAdmission(this, "admission", { wiring: w, labels });
  }

  private role(
    scope: Construct,
    id: string,
    metadata: { name: string; namespace?: string; labels: Record<string, string> },
    rules: PolicyRule[],
  ): kplus.Role | kplus.ClusterRole {
    const role =
      metadata.namespace === undefined
        ? new kplus.ClusterRole(scope, id, { metadata })
        : new kplus.Role(scope, id, { metadata });
    // The rules are written whole from rbac.ts, the one list README.md and the tests check.
    patchFinalJson(ApiObject.of(role), JsonPatch.add("/rules", rules));
    return role;
  }

  private rbac(w: Wiring, labels: Record<string, string>, passdbNamespace: string): void {
    const { name, namespace } = w.release;
    const group = new Construct(this, "rbac");
    const operatorRole = this.role(
      group,
      "operator",
      { name: `${name}-operator`, labels },
      watchedNamespaceRules,
    );
    // All namespaces: one ClusterRoleBinding; otherwise the same ClusterRole bound in each watched namespace.
    w.objectsWhen(
      group,
      (v) => v.allNamespaces,
      "$.Values.allNamespaces",
      () => {
        new kplus.ClusterRoleBinding(group, "operator-all-namespaces", {
          metadata: { name: `${name}-operator`, labels },
          role: operatorRole,
        }).addSubjects(this.serviceAccount);
      },
    );
    w.objectsEach(group, (v) => v.watchNamespaces, (watched) => {
      new kplus.RoleBinding(group, `operator-in-${watched}`, {
        metadata: { name: `${name}-operator`, namespace: watched, labels },
        role: operatorRole,
      }).addSubjects(this.serviceAccount);
    }); // prettier-ignore

    const domainsRole = this.role(group, "domains", { name: `${name}-domains`, labels }, clusterRules);
    new kplus.ClusterRoleBinding(group, "domains-binding", {
      metadata: { name: `${name}-domains`, labels },
      role: domainsRole,
    }).addSubjects(this.serviceAccount);

    // Every name a shard may have, so that shards beyond a lowered count can be deleted too.
    const shardNames = w.eachComputed(
      (v) => Array.from({ length: maxShards }, (_, i) => shardName(v.passdb.secretPrefix, i)),
      `until ${maxShards}`,
      (i) => `printf "%s-%02d" $.Values.passdb.secretPrefix ${i}`,
      (shard) => shard,
    );
    const passdbRole = this.role(
      group,
      "passdb",
      { name: `${name}-passdb`, namespace: passdbNamespace, labels },
      passdbRules(shardNames),
    );
    new kplus.RoleBinding(group, "passdb-binding", {
      metadata: { name: `${name}-passdb`, namespace: passdbNamespace, labels },
      role: passdbRole,
    }).addSubjects(this.serviceAccount);

    const ownRole = this.role(
      group,
      "operator-namespace",
      { name: `${name}-operator-namespace`, namespace, labels },
      operatorNamespaceRules(sealKeySecretName(name), invitationNames.autoconfigConfigMap),
    );
    new kplus.RoleBinding(group, "operator-namespace-binding", {
      metadata: { name: `${name}-operator-namespace`, namespace, labels },
      role: ownRole,
    }).addSubjects(this.serviceAccount);
  }

  /** Namespace users' roles, aggregated into the built-in view, edit and admin ClusterRoles. */
  private userRoles(labels: Record<string, string>): void {
    const { name } = this.wiring.release;
    const group = new Construct(this, "aggregated-roles");
    this.role(
      group,
      "view",
      {
        name: `${name}-view`,
        labels: {
          ...labels,
          [aggregationLabels.view]: "true",
          [aggregationLabels.edit]: "true",
          [aggregationLabels.admin]: "true",
        },
      },
      viewRules,
    );
    this.role(
      group,
      "edit",
      {
        name: `${name}-edit`,
        labels: { ...labels, [aggregationLabels.edit]: "true", [aggregationLabels.admin]: "true" },
      },
      editRules,
    );
    // Namespace admins may read MailDomains, never change them: a ClusterRoleBinding to a group.
    const w = this.wiring;
    w.objectsWhen(
      group,
      (v) => v.mailDomainReaders.group !== "",
      "$.Values.mailDomainReaders.group",
      () => {
        const reader = this.role(
          group,
          "maildomain-reader",
          { name: `${name}-maildomain-reader`, labels },
          mailDomainReaderRules,
        );
        new kplus.ClusterRoleBinding(group, "maildomain-readers", {
          metadata: { name: `${name}-maildomain-readers`, labels },
          role: reader,
        }).addSubjects(
          kplus.Group.fromName(
            group,
            "readers",
            w.value((v) => v.mailDomainReaders.group),
          ),
        );
      },
    );
  }

  /** With several replicas, a voluntary disruption (a node drain) takes at most one at a time. */
  private disruptionBudget(
    w: Wiring,
    labels: Record<string, string>,
    selectorLabels: Record<string, string>,
  ): void {
    const group = new Construct(this, "disruption-budget");
    w.objectsWhen(
      group,
      (v) => v.replicas > 1,
      "gt (int $.Values.replicas) 1",
      () => {
        new ApiObject(group, "pdb", {
          apiVersion: "policy/v1",
          kind: "PodDisruptionBudget",
          metadata: { name: w.release.name, namespace: w.release.namespace, labels },
          spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels } },
        });
      },
    );
  }

  /** The Dovecot configuration shipped with devicepass, in Dovecot's namespace. */
  private dovecotConfig(
    w: Wiring,
    labels: Record<string, string>,
    dovecotNamespace: string,
    files: Record<string, string>,
  ): void {
    const group = new Construct(this, "dovecot-configmap");
    w.objectsWhen(
      group,
      (v) => v.dovecot.configMap.enabled,
      "$.Values.dovecot.configMap.enabled",
      () => {
        const configMap = new kplus.ConfigMap(group, "dovecot", {
          metadata: { name: `${w.release.name}-dovecot`, namespace: dovecotNamespace, labels },
        });
        for (const [file, text] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1)))
          configMap.addData(file, text);
      },
    );
  }

  private operatorDeployment(
    w: Wiring,
    labels: Record<string, string>,
    podLabels: Record<string, string>,
    selectorLabels: Record<string, string>,
    passdbNamespace: string,
  ): kplus.Deployment {
    const { name, namespace } = w.release;
    const group = new Construct(this, "deployment");
    const deployment = new kplus.Deployment(group, "operator", {
      metadata: { name, namespace, labels },
      // Leader election keeps a second pod a standby, so a rolling update may overlap them: the
      // new pod waits warm, and takes over as soon as the old leader releases the Lease on SIGTERM.
      replicas: 1,
      strategy: kplus.DeploymentStrategy.rollingUpdate({
        maxSurge: kplus.PercentOrAbsolute.absolute(1),
        maxUnavailable: kplus.PercentOrAbsolute.absolute(0),
      }),
      select: false,
      podMetadata: { labels: podLabels },
      serviceAccount: this.serviceAccount,
      automountServiceAccountToken: true,
      // Longer than the operator's graceful shutdown (30 s by default), so that reconciles in
      // flight finish before the kubelet's SIGKILL.
      terminationGracePeriod: Duration.seconds(45),
      securityContext: { ensureNonRoot: true, user: uid, group: uid, fsGroup: uid },
      containers: [
        {
          name: "operator",
          image: "devicepass",
          securityContext: {
            ensureNonRoot: true,
            user: uid,
            group: uid,
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            privileged: false,
          },
        },
      ],
    });
    deployment.select(kplus.LabelSelector.of({ labels: selectorLabels }));

    const doveadm = (v: Values) => v.dovecot.doveadmUrl !== "";
    const doveadmExpr = "$.Values.dovecot.doveadmUrl";
    const smtp = (v: Values) => v.smtp.host !== "";
    const smtpExpr = "$.Values.smtp.host";
    const smtpAuth = (v: Values) => v.smtp.host !== "" && v.smtp.credentialsSecret !== "";
    const smtpAuthExpr = "and $.Values.smtp.host $.Values.smtp.credentialsSecret";
    const keyFile = w.computed(
      (v) => `${doveadmKeyDir}/${v.dovecot.apiKeySecret.key}`,
      `printf "%s/%s" ${JSON.stringify(doveadmKeyDir)} $.Values.dovecot.apiKeySecret.key`,
    );
    const args = [
      ...w.each(
        (v) => v.watchNamespaces,
        (ns) => `--namespace=${ns}`,
      ),
      `--passdb-namespace=${passdbNamespace}`,
      `--passdb-secret-prefix=${w.value((v) => v.passdb.secretPrefix)}`,
      `--passdb-shards=${w.value((v) => v.passdb.shards)}`,
      `--password-length=${w.value((v) => v.password.length)}`,
      `--argon2-memory-kib=${w.value((v) => v.password.argon2.memoryKiB)}`,
      `--argon2-iterations=${w.value((v) => v.password.argon2.iterations)}`,
      `--argon2-parallelism=${w.value((v) => v.password.argon2.parallelism)}`,
      `--hash-concurrency=${w.value((v) => v.password.hashConcurrency)}`,
      ...w.when(
        (v) => !v.requireMailDomain,
        "not $.Values.requireMailDomain",
        () => "--no-require-mail-domain",
      ),
      ...w.when(
        (v) => Object.keys(v.defaultClientSettings).length > 0,
        "$.Values.defaultClientSettings",
        () =>
          `--default-client-settings=${w.computed((v) => canonicalJson(v.defaultClientSettings), "toJson $.Values.defaultClientSettings")}`,
      ),
      ...w.when(doveadm, doveadmExpr, () => `--doveadm-url=${w.value((v) => v.dovecot.doveadmUrl)}`),
      ...w.when(doveadm, doveadmExpr, () => `--doveadm-api-key-file=${keyFile}`),
      ...w.when(
        doveadm,
        doveadmExpr,
        () => `--kick-repeat-seconds=${w.value((v) => v.dovecot.kickRepeatSeconds)}`,
      ),
      // Invitations: links on the portal's origin, e-mailed through the relay.
      ...w.when(
        (v) => v.portal.publicUrl !== "",
        "$.Values.portal.publicUrl",
        () => `--portal-url=${w.value((v) => v.portal.publicUrl)}`,
      ),
      ...w.when(smtp, smtpExpr, () => `--smtp-host=${w.value((v) => v.smtp.host)}`),
      ...w.when(
        (v) => v.smtp.host !== "" && v.smtp.port !== 0,
        "and $.Values.smtp.host $.Values.smtp.port",
        () => `--smtp-port=${w.value((v) => v.smtp.port)}`,
      ),
      ...w.when(
        smtp,
        smtpExpr,
        () =>
          `--smtp-security=${w.computed((v) => v.smtp.security.toLowerCase(), "lower $.Values.smtp.security")}`,
      ),
      ...w.when(smtp, smtpExpr, () => `--smtp-from=${w.value((v) => v.smtp.from)}`),
      ...w.when(smtpAuth, smtpAuthExpr, () => `--smtp-credentials-dir=${smtpCredentialsDir}`),
      `--metrics-addr=:${w.value((v) => v.metrics.port)}`,
      `--health-addr=:${w.value((v) => v.health.port)}`,
      `--log-level=${w.value((v) => v.logLevel)}`,
      "--leader-elect",
      `--operator-namespace=${namespace}`,
      `--seal-key-secret=${namespace}/${sealKeySecretName(name)}`,
      `--leader-election-namespace=${namespace}`,
      `--leader-election-id=${name}-leader`,
    ];
    const probe = (path: string, periodSeconds: number) => ({
      httpGet: { path, port: "health" },
      periodSeconds,
      timeoutSeconds: 2,
      failureThreshold: 3,
    });
    const container = "/spec/template/spec/containers/0";
    patchFinalJson(
      ApiObject.of(deployment),
      // cdk8s-plus labels pods with its own construct address; the selector does not use it.
      JsonPatch.remove("/spec/template/metadata/labels/cdk8s.io~1metadata.addr"),
      JsonPatch.add(`${container}/image`, imageOf(w)),
      JsonPatch.add(
        `${container}/imagePullPolicy`,
        w.value((v) => v.image.pullPolicy),
      ),
      JsonPatch.add(`${container}/args`, args),
      // Node's heap sized for the container, malloc handing freed memory back (runtime-env.ts).
      JsonPatch.add(`${container}/env`, operatorEnvList()),
      JsonPatch.replace(
        "/spec/replicas",
        w.value((v) => v.replicas),
      ),
      JsonPatch.add("/spec/template/spec/affinity", spreadOverNodes(selectorLabels)),
      JsonPatch.add(`${container}/ports`, [
        { name: "metrics", containerPort: w.value((v) => v.metrics.port), protocol: "TCP" },
        { name: "health", containerPort: w.value((v) => v.health.port), protocol: "TCP" },
      ]),
      JsonPatch.add(`${container}/livenessProbe`, probe("/healthz", 10)),
      JsonPatch.add(`${container}/readinessProbe`, probe("/readyz", 5)),
      JsonPatch.add(
        `${container}/resources`,
        w.value((v) => v.resources),
      ),
      // Pod Security "restricted" wants every capability dropped and the runtime's seccomp profile.
      JsonPatch.add(`${container}/securityContext/capabilities`, { drop: ["ALL"] }),
      JsonPatch.add("/spec/template/spec/securityContext/seccompProfile", { type: "RuntimeDefault" }),
      JsonPatch.add(`${container}/volumeMounts`, [
        // The root filesystem is read-only; a scratch /tmp for whatever a library writes there.
        { name: "tmp", mountPath: "/tmp" },
        ...w.when(doveadm, doveadmExpr, () => ({
          name: "doveadm-api-key",
          mountPath: doveadmKeyDir,
          readOnly: true,
        })),
        ...w.when(smtpAuth, smtpAuthExpr, () => ({
          name: "smtp-credentials",
          mountPath: smtpCredentialsDir,
          readOnly: true,
        })),
      ]),
      JsonPatch.add("/spec/template/spec/volumes", [
        { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
        ...w.when(doveadm, doveadmExpr, () => ({
          name: "doveadm-api-key",
          secret: {
            secretName: w.computed(
              (v) => v.dovecot.apiKeySecret.name,
              'required "dovecot.apiKeySecret.name is required with dovecot.doveadmUrl" $.Values.dovecot.apiKeySecret.name',
            ),
            defaultMode: 0o440,
          },
        })),
        ...w.when(smtpAuth, smtpAuthExpr, () => ({
          name: "smtp-credentials",
          secret: {
            secretName: w.value((v) => v.smtp.credentialsSecret),
            defaultMode: 0o440,
            items: [
              { key: "username", path: "username" },
              { key: "password", path: "password" },
            ],
          },
        })),
      ]),
      JsonPatch.add(
        "/spec/template/metadata/annotations",
        w.value((v) => v.podAnnotations),
      ),
      JsonPatch.add(
        "/spec/template/spec/imagePullSecrets",
        w.each(
          (v) => v.imagePullSecrets,
          (secret) => ({ name: secret }),
        ),
      ),
      JsonPatch.add(
        "/spec/template/spec/nodeSelector",
        w.value((v) => v.nodeSelector),
      ),
      JsonPatch.add(
        "/spec/template/spec/tolerations",
        w.value((v) => v.tolerations),
      ),
      JsonPatch.add(
        "/spec/template/spec/affinity",
        w.value((v) => v.affinity),
      ),
    );
    return deployment;
  }
}

/**
 * JSON patches applied to the object's final JSON. cdk8s-plus's typed objects (KubeDeployment, …)
 * re-map their JSON through typed converters after ApiObject's own patches, which drops values
 * they do not recognise as typed (a plain "100m" where a Quantity is expected, a named port),
 * so these patches wrap toJson on the instance and run last, in every synthesis.
 */
export function patchFinalJson(object: ApiObject, ...patches: JsonPatch[]): void {
  const typed = object.toJson.bind(object);
  object.toJson = () => JsonPatch.apply(typed(), ...patches) as unknown;
}

/** JSON with sorted keys, as Helm's toJson writes it (Go sorts map keys). */
export function canonicalJson(value: unknown): string {
  const sort = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(sort);
    if (node === null || typeof node !== "object") return node;
    return Object.fromEntries(
      Object.keys(node)
        .sort()
        .map((k) => [k, sort((node as Record<string, unknown>)[k])]),
    );
  };
  return JSON.stringify(sort(value));
}

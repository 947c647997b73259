// The Helm chart's values: one zod schema gives the TypeScript type, the defaults (values.yaml),
// the chart's values.schema.json, and the validation of values handed to the cdk8s constructs.
import { z } from "zod";
import { clientSettingsSchema } from "../api/schemas.ts";
import { defaults } from "../config.ts";
import { passwordLengthBounds } from "../credentials/password.ts";
import { defaultMemoryLimitMiB } from "./runtime-env.ts";

/** The most shard Secrets a database may have; RBAC names each one the operator may write. */
export const maxShards = 256;
import { portalValuesSchema } from "./portal-values.ts";
import { defaultSyncReportName } from "../passdb/sync-report.ts";

const port = (what: string, value: number) =>
  z.number().int().min(1).max(65535).default(value).meta({ description: what });

const kubernetesName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);

/** Free-form Kubernetes fields passed through to the pod as they are (resources, affinity, …). */
const passThrough = z.record(z.string(), z.unknown());

export const valuesSchema = z
  .strictObject({
    replicas: z.number().int().min(1).default(1).meta({
      description:
        "Operator replicas. One holds the leader Lease and reconciles; the others keep warm caches and take over within the lease duration. More than one adds a PodDisruptionBudget.",
    }),
    image: z
      .strictObject({
        repository: z
          .string()
          .min(1)
          .default("devicepass")
          .meta({ description: "Image repository; build the image with the repository's Dockerfile." }),
        tag: z.string().default("").meta({ description: "Image tag; empty means the chart's appVersion." }),
        pullPolicy: z
          .enum(["Always", "IfNotPresent", "Never"])
          .default("IfNotPresent")
          .meta({ description: "When the kubelet pulls the image." }),
      })
      .prefault({})
      .meta({ description: "The operator's container image." }),
    imagePullSecrets: z
      .array(kubernetesName)
      .default([])
      .meta({ description: "Names of Secrets in the release namespace to pull the image with." }),
    watchNamespaces: z.array(kubernetesName).default([]).meta({
      description:
        "Namespaces whose MailAddresses and MailDevices the operator manages: it may read and write Secrets in these only. Required unless allNamespaces is true.",
    }),
    allNamespaces: z.boolean().default(false).meta({
      description:
        "Manage every namespace instead of watchNamespaces: the operator's Secret rules become cluster-wide (it may read every Secret), and the chart's ValidatingAdmissionPolicy still refuses its writes to any Secret that is not devicepass's own.",
    }),
    passdb: z
      .strictObject({
        namespace: z
          .union([kubernetesName, z.literal("")])
          .default("")
          .meta({
            description:
              "Namespace of the password database Secrets, where the mail server (and its passdb-sync sidecar) reads them. It should hold nothing else: whoever may read its Secrets reads them all. Empty means the release namespace; never one of watchNamespaces.",
          }),
        secretPrefix: kubernetesName
          .max(240)
          .default(defaults.passdbSecretPrefix)
          .meta({ description: "Name prefix of the shard Secrets: <prefix>-00, <prefix>-01, …" }),
        shards: z
          .number()
          .int()
          .min(1)
          .max(maxShards)
          .default(defaults.passdbShards)
          .meta({ description: "Number of shard Secrets; 64 holds 50,000 devices." }),
      })
      .prefault({})
      .meta({ description: "The password database the mail server reads (argon2id hashes only)." }),
    password: z
      .strictObject({
        length: z
          .number()
          .int()
          .min(passwordLengthBounds.min)
          .max(passwordLengthBounds.max)
          .default(defaults.passwordLength)
          .meta({ description: "Length of generated passwords." }),
        argon2: z
          .strictObject({
            memoryKiB: z
              .number()
              .int()
              .min(1024)
              .default(defaults.argon2.memoryCost)
              .meta({ description: "argon2id memory cost in KiB." }),
            iterations: z
              .number()
              .int()
              .min(1)
              .default(defaults.argon2.timeCost)
              .meta({ description: "argon2id time cost." }),
            parallelism: z
              .number()
              .int()
              .min(1)
              .default(defaults.argon2.parallelism)
              .meta({ description: "argon2id lanes." }),
          })
          .prefault({})
          .meta({ description: "argon2id parameters of the hashes in the password database." }),
        hashConcurrency: z.number().int().min(1).default(defaults.hashConcurrency).meta({
          description:
            "argon2id hashes the operator computes at once; each takes argon2.memoryKiB of memory and a core.",
        }),
      })
      .prefault({})
      .meta({ description: "Generated passwords and their hashes." }),
    mailDomainReaders: z
      .strictObject({
        group: z.string().default("system:authenticated").meta({
          description:
            "Group allowed to read (never change) MailDomains, so namespace admins see which namespaces a domain admits; empty installs no binding.",
        }),
      })
      .prefault({})
      .meta({ description: "Who may read MailDomains." }),
    requireMailDomain: z.boolean().default(true).meta({
      description:
        "Issue credentials only for addresses whose domain has a MailDomain admitting their namespace; false suits single-tenant clusters.",
    }),
    defaultClientSettings: clientSettingsSchema.default({}).meta({
      description:
        "Recommended IMAP, POP3 and SMTP settings (host, port, security) for addresses without their own, copied into device Secrets.",
    }),
    dovecot: z
      .strictObject({
        doveadmUrl: z.string().default("").meta({
          description:
            "Dovecot's doveadm HTTP API, e.g. http://dovecot.mail:8080/doveadm/v1, to cut the sessions of a revoked or rotated password; empty disables it.",
        }),
        apiKeySecret: z
          .strictObject({
            name: z
              .union([kubernetesName, z.literal("")])
              .default("")
              .meta({
                description:
                  "Secret in the release namespace holding the doveadm API key; required with doveadmUrl.",
              }),
            key: z.string().min(1).default("api-key").meta({ description: "Key of the API key in it." }),
          })
          .prefault({})
          .meta({ description: "The doveadm API key, mounted as a file into the operator." }),
        kickRepeatSeconds: z
          .number()
          .int()
          .min(0)
          .default(defaults.kickRepeatMs / 1000)
          .meta({
            description:
              "Kick sessions again this many seconds later: only where Dovecot reads the database from a mounted Secret volume (the kubelet's sync, about a minute), not with passdb-sync, which kicks once the file is written; 0 disables.",
          }),
        configMap: z
          .strictObject({
            enabled: z.boolean().default(true).meta({
              description:
                "Install the Dovecot configuration of examples/dovecot/ as ConfigMap <release>-dovecot in Dovecot's namespace (passdbSync.namespace, else the password database namespace).",
            }),
          })
          .prefault({})
          .meta({ description: "The Dovecot configuration shipped with devicepass." }),
      })
      .prefault({})
      .meta({ description: "The Dovecot mail server that reads the password database." }),
    portal: portalValuesSchema,
    smtp: z
      .strictObject({
        host: z.string().default("").meta({
          description:
            "SMTP relay that e-mails invitation links (MailDevices with delivery Invitation and spec.invitation.email or spec.user.email); empty: links are only in the <device>-invitation Secrets.",
        }),
        port: z.number().int().min(0).max(65535).default(0).meta({
          description: "The relay's port; 0: 587 with STARTTLS, 465 with TLS.",
        }),
        security: z.enum(["STARTTLS", "TLS"]).default("STARTTLS").meta({
          description:
            "STARTTLS (a required upgrade, usually port 587) or TLS (implicit TLS, usually port 465).",
        }),
        from: z.string().default("").meta({
          description:
            'From address of invitation e-mails, e.g. "devicepass <noreply@example.com>"; required with host.',
        }),
        credentialsSecret: z
          .union([kubernetesName, z.literal("")])
          .default("")
          .meta({
            description:
              "A kubernetes.io/basic-auth Secret in the release namespace (keys username and password) for SMTP AUTH, mounted into the operator as files and read at each e-mail; empty: no AUTH.",
          }),
      })
      .prefault({})
      .meta({ description: "The SMTP relay for invitation e-mails." }),
    passdbSync: z
      .strictObject({
        enabled: z.boolean().default(false).meta({
          description:
            "Install what a devicepass passdb-sync sidecar in your Dovecot pods needs: its Role and RoleBinding in the password database namespace (read the shard Secrets by name, patch the report), the empty report ConfigMap, and optionally its ServiceAccount.",
        }),
        namespace: z
          .union([kubernetesName, z.literal("")])
          .default("")
          .meta({
            description:
              "Namespace of the Dovecot pods (their ServiceAccount, and the Dovecot ConfigMap); empty means the password database namespace.",
          }),
        serviceAccount: z
          .strictObject({
            create: z
              .boolean()
              .default(true)
              .meta({ description: "Create the ServiceAccount in that namespace." }),
            name: kubernetesName
              .default("dovecot")
              .meta({ description: "The Dovecot pods' ServiceAccount." }),
          })
          .prefault({})
          .meta({ description: "The ServiceAccount the Dovecot pods (and so the sidecar) run as." }),
        reportName: kubernetesName.default(defaultSyncReportName).meta({
          description:
            "The report ConfigMap in the password database namespace (the sidecar's --report-name), where each Dovecot pod says what it has on disk and who logged in.",
        }),
      })
      .prefault({})
      .meta({ description: "The passdb-sync sidecar beside Dovecot (devicepass passdb-sync)." }),
    logLevel: z
      .enum(["trace", "debug", "info", "warn", "error"])
      .default("info")
      .meta({ description: "Log level of the operator (JSON logs on stderr)." }),
    health: z
      .strictObject({ port: port("Port of /healthz and /readyz (liveness and readiness probes).", 8081) })
      .prefault({})
      .meta({ description: "Health endpoints." }),
    metrics: z
      .strictObject({ port: port("Port of the Prometheus /metrics endpoint.", 8080) })
      .prefault({})
      .meta({ description: "Prometheus metrics." }),
    resources: passThrough
      .default({
        requests: { cpu: "100m", memory: "256Mi" },
        limits: { memory: `${defaultMemoryLimitMiB / 1024}Gi` },
      })
      .meta({ description: "Container resources; each argon2id hash in flight takes memoryKiB of memory." }),
    podAnnotations: z
      .record(z.string(), z.string())
      .default({})
      .meta({ description: "Annotations of the operator's pod." }),
    nodeSelector: z.record(z.string(), z.string()).default({}).meta({ description: "Pod node selector." }),
    tolerations: z.array(passThrough).default([]).meta({ description: "Pod tolerations." }),
    affinity: passThrough.default({}).meta({ description: "Pod affinity." }),
  })
  .meta({ description: "Values of the devicepass Helm chart." });

export type Values = z.output<typeof valuesSchema>;
export type ValuesInput = z.input<typeof valuesSchema>;

/**
 * Rules across values, written twice: a TypeScript predicate for the plain manifests and cdk8s
 * apps (parseValues), and a Go template expression, true when the rule is broken, for the chart's
 * templates/validate.yaml (`helm install` fails with the message). The chart tests render both.
 */
export const valueRules: { broken: (v: Values) => boolean; expr: string; path: string; message: string }[] = [
  {
    broken: (v) => v.watchNamespaces.length === 0 && !v.allNamespaces,
    expr: "and (not $.Values.watchNamespaces) (not $.Values.allNamespaces)",
    path: "watchNamespaces",
    message:
      "set watchNamespaces to the namespaces whose MailDevices devicepass manages, or allNamespaces=true to manage every namespace",
  },
  {
    broken: (v) => v.watchNamespaces.length > 0 && v.allNamespaces,
    expr: "and $.Values.watchNamespaces $.Values.allNamespaces",
    path: "allNamespaces",
    message: "watchNamespaces and allNamespaces=true exclude each other: set one of them",
  },
  {
    broken: (v) => v.passdb.namespace !== "" && v.watchNamespaces.includes(v.passdb.namespace),
    expr: "and $.Values.passdb.namespace (has $.Values.passdb.namespace $.Values.watchNamespaces)",
    path: "passdb.namespace",
    message:
      "passdb.namespace must hold nothing but the password database: it cannot be one of watchNamespaces",
  },
  {
    // The operator refuses --doveadm-url without a key file; the chart says the same.
    broken: (v) => v.dovecot.doveadmUrl !== "" && v.dovecot.apiKeySecret.name === "",
    expr: "and $.Values.dovecot.doveadmUrl (not $.Values.dovecot.apiKeySecret.name)",
    path: "dovecot.apiKeySecret.name",
    message: "dovecot.apiKeySecret.name is required with dovecot.doveadmUrl",
  },
  {
    broken: (v) => v.smtp.host !== "" && v.smtp.from === "",
    expr: "and $.Values.smtp.host (not $.Values.smtp.from)",
    path: "smtp.from",
    message: "smtp.from is required with smtp.host",
  },
  {
    broken: (v) => v.portal.enabled && v.portal.publicUrl === "",
    expr: "and $.Values.portal.enabled (not $.Values.portal.publicUrl)",
    path: "portal.publicUrl",
    message: "portal.publicUrl is required with portal.enabled",
  },
];

/** Throws with every broken rule's message, as `helm install` would fail. */
export function checkValueRules(values: Values): Values {
  const broken = valueRules.filter((r) => r.broken(values));
  if (broken.length > 0) throw new Error(broken.map((r) => `${r.path}: ${r.message}`).join("; "));
  return values;
}

/** templates/validate.yaml: renders nothing, or fails the install with the broken rule's message. */
export function validateTemplate(): string {
  return valueRules
    .map(
      (r) => `{{- if ${r.expr} }}
{{- fail ${JSON.stringify(r.message)} }}
{{- end }}
`,
    )
    .join("");
}

/**
 * Values as Helm merges them: user maps merge into the defaults key by key (so `resources:
 * {requests: …}` keeps the default limits), anything else replaces, and null removes a default.
 */
export function mergeValues(defaults: unknown, user: unknown): unknown {
  const isMap = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isMap(defaults) || !isMap(user)) return user === undefined ? defaults : user;
  const out: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(user)) {
    if (value === null) delete out[key];
    else out[key] = mergeValues(defaults[key], value);
  }
  return out;
}

/** Parses values given the way `helm install -f` takes them: merged into the defaults, rules checked. */
export function parseValues(user: ValuesInput = {}): Values {
  return checkValueRules(valuesSchema.parse(mergeValues(defaultValues(), user)));
}

/** The chart's default values: values.yaml. */
export function defaultValues(): Values {
  return valuesSchema.parse({});
}

/** values.schema.json: Helm validates `helm install --set …` against it. */
export function valuesJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(valuesSchema, { io: "input", target: "draft-7" }) as Record<string, unknown>;
  // JavaScript's safe-integer bound says nothing to a Helm user.
  const clean = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(clean);
    if (node === null || typeof node !== "object") return node;
    return Object.fromEntries(
      Object.entries(node)
        .filter(([k, v]) => !(k === "maximum" && v === Number.MAX_SAFE_INTEGER))
        .filter(([k, v]) => !(k === "minimum" && v === Number.MIN_SAFE_INTEGER))
        .map(([k, v]) => [k, k === "default" || k === "enum" ? v : clean(v)]),
    );
  };
  return clean(schema) as Record<string, unknown>;
}

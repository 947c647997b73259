// The operator's command line: flags (with DEVICEPASS_* environment fallbacks) into an OperatorConfig.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { clientSettingsSchema } from "./api/schemas.ts";
import type { OperatorConfig } from "./context.ts";
import { defaultConfig } from "./operator.ts";

export const usage = `Usage: devicepass [options]

Runs the devicepass operator against the current cluster ($KUBECONFIG, ~/.kube/config, or the
in-cluster service account). With no cluster configured, or with --sandbox, it first starts an
embedded local control plane and installs the CRDs. \`devicepass passdb-sync --help\`: the sidecar
that runs next to Dovecot.

Options:
  --sandbox                       start the embedded control plane even if a cluster is configured
  --kubeconfig PATH               kubeconfig to use instead of the default discovery
  --namespace NS                  watch only NS (repeatable; default: all namespaces)
  --passdb-namespace NS           namespace of the password database Secrets (default: devicepass-system)
  --passdb-secret-prefix NAME     name prefix of its shard Secrets (default: devicepass-passdb)
  --passdb-shards N               number of shard Secrets (default: 64)
  --password-length N             generated password length (default: 24)
  --argon2-memory-kib N           argon2id memory cost (default: 19456)
  --argon2-iterations N           argon2id time cost (default: 2)
  --argon2-parallelism N          argon2id lanes (default: 1)
  --default-client-settings JSON  recommended IMAP/POP3/SMTP settings for addresses without their own
  --no-require-mail-domain        issue credentials for addresses whose domain has no MailDomain
                                  (single-tenant clusters; default: a MailDomain is required)
  --doveadm-url URL               Dovecot's doveadm HTTP API (http://host:port/doveadm/v1), to cut sessions
  --doveadm-api-key-file PATH     file holding the doveadm API key (required with --doveadm-url)
  --kick-repeat-seconds N         kick sessions again N seconds later: only for a Dovecot that reads
                                  the database from a mounted Secret volume (the kubelet's sync took
                                  58-81 s), not beside passdb-sync, which kicks once the file is
                                  written (default: 0, no repeat)
  --last-used-precision-seconds N write a device's status.lastUsedAt at most once per N seconds, from
                                  the logins passdb-sync reports (default: 300)
  --metrics-addr ADDR             serve Prometheus /metrics on ADDR, e.g. :8080 (default: 0, off)
  --health-addr ADDR              serve /healthz and /readyz on ADDR, e.g. :8081 (default: 0, off)
  --log-level LEVEL               trace, debug, info, warn, error, fatal or silent (default: info)
  --leader-elect, --no-leader-elect
                                  with several replicas, reconcile only while holding a Lease; the
                                  others keep warm caches and stand by (default: on in a pod, off
                                  elsewhere: a developer's run never waits for a Lease)
  --leader-election-namespace NS  namespace of the Lease (default: the pod's namespace; outside a
                                  pod, the password database namespace)
  --leader-election-id NAME       name of the Lease (default: devicepass-leader)
  --graceful-shutdown-timeout S   on SIGTERM, seconds to let reconciles in flight finish before
                                  exiting anyway (default: 30; keep it below the pod's
                                  terminationGracePeriodSeconds)
  -h, --help                      show this help
`;

export interface CommandLine {
  help: boolean;
  sandbox: boolean;
  kubeconfig: string | undefined;
  logLevel: string;
  metricsAddr: string;
  healthAddr: string;
  leaderElection: { enabled: boolean; namespace: string; name: string };
  gracefulShutdownMs: number;
  config: OperatorConfig;
}

export const logLevels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The pod's namespace when running in a pod (downward API variable, else the service account's). */
export function podNamespace(env: NodeJS.ProcessEnv): string | undefined {
  if (env.KUBERNETES_SERVICE_HOST === undefined) return undefined;
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE;
  try {
    return readFileSync(`${serviceAccountDir}/namespace`, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/** `--flag=true` and `--flag=false` as Go programs take them, for a boolean flag. */
function normalizeBooleanFlags(args: string[], names: string[]): string[] {
  return args.map((arg) => {
    const match = /^--([a-z-]+)=(true|false)$/.exec(arg);
    if (!match || !names.includes(match[1]!)) return arg;
    return match[2] === "true" ? `--${match[1]}` : `--no-${match[1]}`;
  });
}

function booleanEnv(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined || value === "") return undefined;
  if (value === "true") return true;
  if (value === "false") return false;
  throw new Error(`${name} must be true or false, got ${JSON.stringify(value)}`);
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export function parseCommandLine(args: string[], env: NodeJS.ProcessEnv = process.env): CommandLine {
  const { values } = parseArgs({
    args: normalizeBooleanFlags(args, ["leader-elect"]),
    strict: true,
    allowNegative: true,
    options: {
      help: { type: "boolean", short: "h" },
      sandbox: { type: "boolean" },
      kubeconfig: { type: "string" },
      namespace: { type: "string", multiple: true },
      "passdb-namespace": { type: "string" },
      "passdb-secret-prefix": { type: "string" },
      "passdb-shards": { type: "string" },
      "password-length": { type: "string" },
      "argon2-memory-kib": { type: "string" },
      "argon2-iterations": { type: "string" },
      "argon2-parallelism": { type: "string" },
      "default-client-settings": { type: "string" },
      "log-level": { type: "string" },
      "doveadm-url": { type: "string" },
      "require-mail-domain": { type: "boolean" },
      "doveadm-api-key-file": { type: "string" },
      "kick-repeat-seconds": { type: "string" },
      "last-used-precision-seconds": { type: "string" },
      "metrics-addr": { type: "string" },
      "health-addr": { type: "string" },
      "leader-elect": { type: "boolean" },
      "leader-election-namespace": { type: "string" },
      "leader-election-id": { type: "string" },
      "graceful-shutdown-timeout": { type: "string" },
    },
  });
  const flag = (name: keyof typeof values, envName: string) =>
    (values[name] as string | undefined) ?? env[`DEVICEPASS_${envName}`];
  const namespaces = values.namespace ?? env.DEVICEPASS_NAMESPACES?.split(",").filter(Boolean);
  const settingsJson = flag("default-client-settings", "DEFAULT_CLIENT_SETTINGS");
  let defaultClientSettings = defaultConfig.defaultClientSettings;
  if (settingsJson) {
    const parsed = clientSettingsSchema.safeParse(JSON.parse(settingsJson));
    if (!parsed.success) throw new Error(`--default-client-settings: ${parsed.error.message}`);
    defaultClientSettings = parsed.data;
  }
  const argon2 = defaultConfig.argon2;
  const doveadmUrl = flag("doveadm-url", "DOVEADM_URL");
  const doveadmKeyFile = flag("doveadm-api-key-file", "DOVEADM_API_KEY_FILE");
  if (doveadmUrl && !doveadmKeyFile) throw new Error("--doveadm-url needs --doveadm-api-key-file");
  const kickRepeat = flag("kick-repeat-seconds", "KICK_REPEAT_SECONDS");
  const repeatSeconds =
    kickRepeat === undefined || kickRepeat === "0" ? 0 : positiveInt("kick-repeat-seconds", kickRepeat, 0);
  const logLevel = flag("log-level", "LOG_LEVEL") ?? "info";
  if (!logLevels.includes(logLevel))
    throw new Error(`--log-level must be one of ${logLevels.join(", ")}, got ${JSON.stringify(logLevel)}`);
  const passdbNamespace = flag("passdb-namespace", "PASSDB_NAMESPACE") ?? defaultConfig.passdbNamespace;
  const inPod = podNamespace(env);
  const shutdownSeconds = Number(flag("graceful-shutdown-timeout", "GRACEFUL_SHUTDOWN_TIMEOUT") ?? 30);
  if (!Number.isFinite(shutdownSeconds) || shutdownSeconds < 0)
    throw new Error("--graceful-shutdown-timeout must be a number of seconds");
  return {
    help: values.help ?? false,
    sandbox: values.sandbox ?? false,
    kubeconfig: values.kubeconfig,
    logLevel,
    metricsAddr: flag("metrics-addr", "METRICS_ADDR") ?? "0",
    healthAddr: flag("health-addr", "HEALTH_ADDR") ?? "0",
    leaderElection: {
      enabled:
        values["leader-elect"] ??
        booleanEnv("DEVICEPASS_LEADER_ELECT", env.DEVICEPASS_LEADER_ELECT) ??
        inPod !== undefined,
      namespace: flag("leader-election-namespace", "LEADER_ELECTION_NAMESPACE") ?? inPod ?? passdbNamespace,
      name: flag("leader-election-id", "LEADER_ELECTION_ID") ?? "devicepass-leader",
    },
    gracefulShutdownMs: shutdownSeconds * 1000,
    config: {
      ...defaultConfig,
      namespaces: namespaces && namespaces.length > 0 ? namespaces : undefined,
      passdbNamespace,
      passdbSecretPrefix:
        flag("passdb-secret-prefix", "PASSDB_SECRET_PREFIX") ?? defaultConfig.passdbSecretPrefix,
      passdbShards: positiveInt(
        "passdb-shards",
        flag("passdb-shards", "PASSDB_SHARDS"),
        defaultConfig.passdbShards,
      ),
      passwordLength: positiveInt(
        "password-length",
        flag("password-length", "PASSWORD_LENGTH"),
        defaultConfig.passwordLength,
      ),
      argon2: {
        memoryCost: positiveInt(
          "argon2-memory-kib",
          flag("argon2-memory-kib", "ARGON2_MEMORY_KIB"),
          argon2.memoryCost,
        ),
        timeCost: positiveInt(
          "argon2-iterations",
          flag("argon2-iterations", "ARGON2_ITERATIONS"),
          argon2.timeCost,
        ),
        parallelism: positiveInt(
          "argon2-parallelism",
          flag("argon2-parallelism", "ARGON2_PARALLELISM"),
          argon2.parallelism,
        ),
      },
      defaultClientSettings,
      requireMailDomain: values["require-mail-domain"] ?? env.DEVICEPASS_REQUIRE_MAIL_DOMAIN !== "false",
      lastUsedPrecisionMs:
        positiveInt(
          "last-used-precision-seconds",
          flag("last-used-precision-seconds", "LAST_USED_PRECISION_SECONDS"),
          defaultConfig.lastUsedPrecisionMs / 1000,
        ) * 1000,
      doveadm:
        doveadmUrl && doveadmKeyFile
          ? { url: doveadmUrl, apiKeyFile: doveadmKeyFile, repeatAfterMs: repeatSeconds * 1000 }
          : undefined,
    },
  };
}

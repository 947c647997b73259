// The operator's command line: flags (with DEVICEPASS_* environment fallbacks) into an OperatorConfig.
import { parseArgs } from "node:util";
import { clientSettingsSchema } from "./api/schemas.ts";
import type { OperatorConfig } from "./context.ts";
import { defaultConfig } from "./operator.ts";

export const usage = `Usage: devicepass [options]

Runs the devicepass operator against the current cluster ($KUBECONFIG, ~/.kube/config, or the
in-cluster service account). With no cluster configured, or with --sandbox, it first starts an
embedded local control plane and installs the CRDs.

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
  --doveadm-url URL               Dovecot's doveadm HTTP API (http://host:port/doveadm/v1), to cut sessions
  --doveadm-api-key-file PATH     file holding the doveadm API key (required with --doveadm-url)
  --kick-repeat-seconds N         kick sessions again N seconds later, once the mounted database
                                  has surely reached Dovecot (default: 90; 0 disables)
  --metrics-addr ADDR             serve Prometheus /metrics on ADDR, e.g. :8080 (default: 0, off)
  --health-addr ADDR              serve /healthz and /readyz on ADDR, e.g. :8081 (default: 0, off)
  --log-level LEVEL               trace, debug, info, warn, error (default: info)
  -h, --help                      show this help
`;

export interface CommandLine {
  help: boolean;
  sandbox: boolean;
  kubeconfig: string | undefined;
  logLevel: string;
  metricsAddr: string;
  healthAddr: string;
  config: OperatorConfig;
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
    args,
    strict: true,
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
      "doveadm-api-key-file": { type: "string" },
      "kick-repeat-seconds": { type: "string" },
      "metrics-addr": { type: "string" },
      "health-addr": { type: "string" },
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
  const repeatSeconds = kickRepeat === "0" ? 0 : positiveInt("kick-repeat-seconds", kickRepeat, 90);
  return {
    help: values.help ?? false,
    sandbox: values.sandbox ?? false,
    kubeconfig: values.kubeconfig,
    logLevel: flag("log-level", "LOG_LEVEL") ?? "info",
    metricsAddr: flag("metrics-addr", "METRICS_ADDR") ?? "0",
    healthAddr: flag("health-addr", "HEALTH_ADDR") ?? "0",
    config: {
      ...defaultConfig,
      namespaces: namespaces && namespaces.length > 0 ? namespaces : undefined,
      passdbNamespace: flag("passdb-namespace", "PASSDB_NAMESPACE") ?? defaultConfig.passdbNamespace,
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
      doveadm:
        doveadmUrl && doveadmKeyFile
          ? { url: doveadmUrl, apiKeyFile: doveadmKeyFile, repeatAfterMs: repeatSeconds * 1000 }
          : undefined,
    },
  };
}

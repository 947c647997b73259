// The operator's command line: one table of flags (each with its DEVICEPASS_* environment
// fallback, its default and its help line) from which the usage text, the parsing and the
// operator's defaults all come. The chart's values take their defaults from `defaults` too.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { defaultSealKeySecretName } from "./api/names.ts";
import { clientSettingsSchema, defaultMaxDevicesPerAddress, type ClientSettings } from "./api/schemas.ts";
import { formatDuration, parseDuration } from "./api/duration.ts";
import {
  defaultHashConcurrency,
  owaspArgon2id,
  passwordLengthBounds,
  type Argon2Parameters,
} from "./credentials/password.ts";
import { parseSmtpRelayFlags, smtpRelayFlags, type SmtpRelay } from "./invitations/mail.ts";
import { serviceAccountDir } from "./kube/kubeconfig.ts";
import { defaultShardBudgetBytes } from "./passdb/format.ts";

export interface OperatorConfig {
  /** Namespaces to watch; undefined watches all. */
  namespaces: string[] | undefined;
  /** The operator's own namespace: its Lease, its seal key (never the database namespace in a pod). */
  operatorNamespace: string;
  passdbNamespace: string;
  passdbSecretPrefix: string;
  passdbShards: number;
  /** How long a shard waits for more changes before it is written. */
  passdbBatchWindowMs: number;
  /** The most a shard's data may hold; addresses that do not fit are left out (DatabaseFull). */
  passdbShardBudgetBytes: number;
  passwordLength: number;
  argon2: Argon2Parameters;
  /** argon2id hashes computed at once (each takes argon2.memoryCost of memory). */
  hashConcurrency: number;
  defaultClientSettings: ClientSettings;
  /** Devices per address where the MailDomain sets no devicePolicy.maxDevicesPerAddress. */
  maxDevicesPerAddress: number;
  workers: number;
  /** Addresses whose domain has no MailDomain get no credentials (off: single-tenant clusters). */
  requireMailDomain: boolean;
  /** The Secret holding the operator's seal key (created when missing). */
  sealKeySecret: { namespace: string; name: string };
  /** A device's password is regenerated at most once in this interval. */
  minRotationIntervalMs: number;
  /** How long a Secret outlives a policy change that stopped its password working. */
  suspensionGraceMs: number;
  /** How long a released address stays with its namespace (a re-created MailAddress keeps it). */
  ownershipGraceMs: number;
  /** Every object is reconciled again at this interval, whatever happened (a safety net). */
  resyncPeriodMs: number;
  /** status.lastUsedAt is written at most once per device per this interval (its precision). */
  lastUsedPrecisionMs: number;
  /** Dovecot's doveadm HTTP API, to cut sessions; undefined disables it. */
  doveadm: { url: string; apiKeyFile: string; repeatAfterMs: number } | undefined;
  /** The portal's public origin: invitation links are `<portalUrl>/i/<token>`; undefined: no invitations. */
  portalUrl: string | undefined;
  /** The SMTP relay invitation e-mails go through; undefined: links only in Secrets. */
  smtp: SmtpRelay | undefined;
  /** How long a withdrawn or expired invitation record is kept (its link then says so) before it is deleted. */
  invitationRetentionMs: number;
}

/** The defaults of every setting: the one place they are written. */
export const defaults = {
  passdbNamespace: "devicepass-system",
  passdbSecretPrefix: "devicepass-passdb",
  passdbShards: 64,
  passdbBatchWindowMs: 150,
  passdbShardBudgetBytes: defaultShardBudgetBytes,
  passwordLength: passwordLengthBounds.default,
  argon2: owaspArgon2id,
  hashConcurrency: defaultHashConcurrency,
  maxDevicesPerAddress: defaultMaxDevicesPerAddress,
  workers: 8,
  minRotationIntervalMs: 10_000,
  suspensionGraceMs: 24 * 3_600_000,
  ownershipGraceMs: 24 * 3_600_000,
  resyncPeriodMs: 10 * 60_000,
  kickRepeatMs: 0,
  lastUsedPrecisionMs: 5 * 60_000,
  invitationRetentionMs: 30 * 24 * 3_600_000,
  leaderElectionId: "devicepass-leader",
  gracefulShutdownMs: 30_000,
  logLevel: "info",
} as const;

export const logLevels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

type Kind = "string" | "strings" | "int" | "duration" | "seconds" | "boolean";
interface FlagSpec {
  kind: Kind;
  help: string;
  /** The value's placeholder in the usage text. */
  arg?: string;
  /** Shown as "(default: …)"; a string, since some defaults depend on where the operator runs. */
  shownDefault?: string;
  min?: number;
  max?: number;
}

/** Every flag, in the order the usage text shows them. */
export const flags = {
  kubeconfig: {
    kind: "string",
    arg: "PATH",
    help: "kubeconfig to use instead of $KUBECONFIG, ~/.kube/config or the in-cluster account",
  },
  namespace: { kind: "strings", arg: "NS", help: "watch only NS (repeatable; default: all namespaces)" },
  "operator-namespace": {
    kind: "string",
    arg: "NS",
    help: "the operator's own namespace: its Lease and seal key",
    shownDefault: "the pod's namespace; outside a pod, the database namespace",
  },
  "passdb-namespace": {
    kind: "string",
    arg: "NS",
    help: "namespace of the password database Secrets; it should hold nothing else",
    shownDefault: defaults.passdbNamespace,
  },
  "passdb-secret-prefix": {
    kind: "string",
    arg: "NAME",
    help: "name prefix of its shard Secrets",
    shownDefault: defaults.passdbSecretPrefix,
  },
  "passdb-shards": {
    kind: "int",
    arg: "N",
    help: "number of shard Secrets",
    shownDefault: String(defaults.passdbShards),
    min: 1,
    max: 256,
  },
  "passdb-batch-window": {
    kind: "duration",
    arg: "D",
    help: "how long a shard waits for more changes before it is written",
    shownDefault: formatDuration(defaults.passdbBatchWindowMs),
  },
  "passdb-shard-budget-bytes": {
    kind: "int",
    arg: "N",
    help: "most bytes of data a shard holds; addresses that do not fit are left out",
    shownDefault: String(defaults.passdbShardBudgetBytes),
    min: 4096,
    max: 1_000_000,
  },
  "password-length": {
    kind: "int",
    arg: "N",
    help: "generated password length",
    shownDefault: String(defaults.passwordLength),
    min: passwordLengthBounds.min,
    max: passwordLengthBounds.max,
  },
  "argon2-memory-kib": {
    kind: "int",
    arg: "N",
    help: "argon2id memory cost",
    shownDefault: String(defaults.argon2.memoryCost),
    min: 1024,
  },
  "argon2-iterations": {
    kind: "int",
    arg: "N",
    help: "argon2id time cost",
    shownDefault: String(defaults.argon2.timeCost),
    min: 1,
  },
  "argon2-parallelism": {
    kind: "int",
    arg: "N",
    help: "argon2id lanes",
    shownDefault: String(defaults.argon2.parallelism),
    min: 1,
  },
  "hash-concurrency": {
    kind: "int",
    arg: "N",
    help: "argon2id hashes computed at once; each takes --argon2-memory-kib of memory and a core",
    shownDefault: String(defaults.hashConcurrency),
    min: 1,
  },
  "default-client-settings": {
    kind: "string",
    arg: "JSON",
    help: "recommended IMAP/POP3/SMTP settings for addresses without their own",
  },
  "max-devices-per-address": {
    kind: "int",
    arg: "N",
    help: "devices an address may have where its MailDomain sets no limit",
    shownDefault: String(defaults.maxDevicesPerAddress),
    min: 1,
    max: 100,
  },
  "require-mail-domain": {
    kind: "boolean",
    help: "issue credentials only for addresses whose MailDomain admits them; --no-require-mail-domain for single-tenant clusters",
    shownDefault: "on",
  },
  "seal-key-secret": {
    kind: "string",
    arg: "NS/NAME",
    help: "Secret holding the operator's seal key, created when missing",
    shownDefault: `<operator namespace>/${defaultSealKeySecretName}`,
  },
  "min-rotation-interval": {
    kind: "duration",
    arg: "D",
    help: "a device's password is regenerated at most once in D",
    shownDefault: formatDuration(defaults.minRotationIntervalMs),
  },
  "suspension-grace": {
    kind: "duration",
    arg: "D",
    help: "how long a Secret outlives a policy change that stopped its password working",
    shownDefault: formatDuration(defaults.suspensionGraceMs),
  },
  "ownership-grace": {
    kind: "duration",
    arg: "D",
    help: "how long a released mail address stays with its namespace",
    shownDefault: formatDuration(defaults.ownershipGraceMs),
  },
  "resync-period": {
    kind: "duration",
    arg: "D",
    help: "reconcile every object again at this interval",
    shownDefault: formatDuration(defaults.resyncPeriodMs),
  },
  workers: {
    kind: "int",
    arg: "N",
    help: "MailDevice reconciles at once",
    shownDefault: String(defaults.workers),
    min: 1,
    max: 64,
  },
  "doveadm-url": {
    kind: "string",
    arg: "URL",
    help: "Dovecot's doveadm HTTP API (http://host:port/doveadm/v1), to cut sessions",
  },
  "doveadm-api-key-file": {
    kind: "string",
    arg: "PATH",
    help: "file holding the doveadm API key (required with --doveadm-url)",
  },
  "kick-repeat-seconds": {
    kind: "seconds",
    arg: "N",
    help: "kick sessions again N seconds later: only for a Dovecot that reads the database from a mounted Secret volume (the kubelet's sync took 58-81 s), not beside passdb-sync, which kicks once the file is written (0: no repeat)",
    shownDefault: String(defaults.kickRepeatMs / 1000),
  },
  "last-used-precision-seconds": {
    kind: "seconds",
    arg: "N",
    help: "write a device's status.lastUsedAt at most once per N seconds, from the logins passdb-sync reports",
    shownDefault: String(defaults.lastUsedPrecisionMs / 1000),
  },
  "portal-url": {
    kind: "string",
    arg: "URL",
    help: "the invitation portal's public origin, e.g. https://portal.example.com: links of devices with delivery Invitation are <URL>/i/<token> (without it, such devices get none)",
  },
  "smtp-host": {
    kind: "string",
    arg: "HOST",
    help: "SMTP relay for invitation e-mails (without it, links are only in the <device>-invitation Secrets)",
  },
  "smtp-port": {
    kind: "string",
    arg: "N",
    help: "the relay's port",
    shownDefault: "587 with starttls, 465 with tls, 25 with none",
  },
  "smtp-security": {
    kind: "string",
    arg: "MODE",
    help: "starttls (required upgrade), tls (implicit TLS) or none (plaintext: loopback only)",
    shownDefault: "starttls",
  },
  "smtp-from": {
    kind: "string",
    arg: "ADDRESS",
    help: 'From of invitation e-mails, e.g. "devicepass <noreply@example.com>" (required with --smtp-host)',
  },
  "smtp-credentials-dir": {
    kind: "string",
    arg: "DIR",
    help: "folder with files username and password for SMTP AUTH (a mounted kubernetes.io/basic-auth Secret), read at each e-mail",
  },
  "smtp-ca-file": {
    kind: "string",
    arg: "PATH",
    help: "CA certificate (PEM) of the relay, when it is not a public one",
  },
  "invitation-retention": {
    kind: "duration",
    arg: "D",
    help: "how long a withdrawn or expired invitation is kept (its link says so) before it is deleted (then: not valid)",
    shownDefault: formatDuration(defaults.invitationRetentionMs),
  },
  "metrics-addr": {
    kind: "string",
    arg: "ADDR",
    help: "serve Prometheus /metrics on ADDR, e.g. :8080",
    shownDefault: "0, off",
  },
  "health-addr": {
    kind: "string",
    arg: "ADDR",
    help: "serve /healthz and /readyz on ADDR, e.g. :8081",
    shownDefault: "0, off",
  },
  "log-level": {
    kind: "string",
    arg: "LEVEL",
    help: `${logLevels.join(", ")}`,
    shownDefault: defaults.logLevel,
  },
  "leader-elect": {
    kind: "boolean",
    help: "with several replicas, reconcile only while holding a Lease; the others keep warm caches and stand by",
    shownDefault: "on in a pod, off elsewhere",
  },
  "leader-election-namespace": {
    kind: "string",
    arg: "NS",
    help: "namespace of the Lease",
    shownDefault: "the operator namespace",
  },
  "leader-election-id": {
    kind: "string",
    arg: "NAME",
    help: "name of the Lease",
    shownDefault: defaults.leaderElectionId,
  },
  "graceful-shutdown-timeout": {
    kind: "seconds",
    arg: "S",
    help: "on SIGTERM, seconds to let reconciles in flight finish before exiting anyway (keep it below the pod's terminationGracePeriodSeconds)",
    shownDefault: String(defaults.gracefulShutdownMs / 1000),
  },
} as const satisfies Record<string, FlagSpec>;

type FlagName = keyof typeof flags;

function usageLine(name: string, spec: FlagSpec): string {
  const left = spec.kind === "boolean" ? `--${name}, --no-${name}` : `--${name} ${spec.arg ?? "VALUE"}`;
  const help = spec.shownDefault ? `${spec.help} (default: ${spec.shownDefault})` : spec.help;
  const pad = 34;
  const words = help.split(" ");
  const lines: string[] = [];
  let line = "";
  for (const word of words) {
    if (line && line.length + word.length + 1 > 100 - pad) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  const first = `  ${left}`;
  const head = first.length >= pad ? [first, " ".repeat(pad) + lines[0]] : [first.padEnd(pad) + lines[0]];
  return [...head, ...lines.slice(1).map((l) => " ".repeat(pad) + l)].join("\n");
}

export const usage = `Usage: devicepass [options]
       devicepass portal [options]        the invitation and autoconfiguration web server
       devicepass passdb-sync [options]   the password database sidecar next to Dovecot

Runs the devicepass operator against the current cluster ($KUBECONFIG, ~/.kube/config, or the
in-cluster service account). Every option also reads DEVICEPASS_<OPTION> from the environment
(upper case, dashes as underscores).

Options:
${Object.entries(flags)
  .map(([name, spec]) => usageLine(name, spec))
  .join("\n")}
  -h, --help                      show this help
`;

export interface CommandLine {
  help: boolean;
  kubeconfig: string | undefined;
  logLevel: string;
  metricsAddr: string;
  healthAddr: string;
  leaderElection: { enabled: boolean; namespace: string; name: string };
  gracefulShutdownMs: number;
  config: OperatorConfig;
}

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
function normalizeBooleanFlags(args: string[]): string[] {
  return args.map((arg) => {
    const match = /^--([a-z-]+)=(true|false)$/.exec(arg);
    const spec = match ? (flags as Record<string, FlagSpec>)[match[1]!] : undefined;
    if (!match || spec?.kind !== "boolean") return arg;
    return match[2] === "true" ? `--${match[1]}` : `--no-${match[1]}`;
  });
}

const envName = (flag: string) => `DEVICEPASS_${flag.toUpperCase().replaceAll("-", "_")}`;

/** Parses the operator's flags; throws with a message naming the flag for a bad value. */
export function parseCommandLine(args: string[], env: NodeJS.ProcessEnv = process.env): CommandLine {
  const { values: parsed } = parseArgs({
    args: normalizeBooleanFlags(args),
    strict: true,
    allowNegative: true,
    options: {
      help: { type: "boolean", short: "h" },
      ...Object.fromEntries(
        Object.entries(flags).map(([name, spec]) => [
          name,
          {
            type: spec.kind === "boolean" ? ("boolean" as const) : ("string" as const),
            multiple: spec.kind === "strings",
          },
        ]),
      ),
    },
  });
  const values = parsed as Record<string, string | boolean | string[] | undefined>;
  const raw = (name: FlagName): string | undefined => {
    const value = values[name];
    if (typeof value === "string") return value;
    const fromEnv = env[envName(name)];
    return fromEnv === "" ? undefined : fromEnv;
  };
  const string = (name: FlagName) => raw(name);
  const int = (name: FlagName, fallback: number): number => {
    const text = raw(name);
    if (text === undefined) return fallback;
    const spec: FlagSpec = flags[name];
    const n = Number(text);
    const inRange = Number.isInteger(n) && n >= (spec.min ?? 1) && n <= (spec.max ?? Number.MAX_SAFE_INTEGER);
    if (!inRange) {
      const range =
        spec.max !== undefined
          ? ` from ${spec.min ?? 1} to ${spec.max}`
          : spec.min !== undefined && spec.min > 1
            ? ` of at least ${spec.min}`
            : "";
      throw new Error(`--${name} must be a positive integer${range}, got ${JSON.stringify(text)}`);
    }
    return n;
  };
  const duration = (name: FlagName, fallback: number): number => {
    const text = raw(name);
    if (text === undefined) return fallback;
    const ms = parseDuration(text);
    if (ms === undefined)
      throw new Error(`--${name} must be a duration such as 30s, 5m or 24h, got ${JSON.stringify(text)}`);
    return ms;
  };
  const seconds = (name: FlagName, fallbackMs: number): number => {
    const text = raw(name);
    if (text === undefined) return fallbackMs;
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0)
      throw new Error(`--${name} must be a number of seconds, got ${JSON.stringify(text)}`);
    return n * 1000;
  };
  const boolean = (name: FlagName): boolean | undefined => {
    const value = values[name];
    if (typeof value === "boolean") return value;
    const text = env[envName(name)];
    if (text === undefined || text === "") return undefined;
    if (text === "true") return true;
    if (text === "false") return false;
    throw new Error(`${envName(name)} must be true or false, got ${JSON.stringify(text)}`);
  };

  const namespaces =
    (values.namespace as string[] | undefined) ?? env.DEVICEPASS_NAMESPACE?.split(",").filter(Boolean);
  const settingsJson = string("default-client-settings");
  let defaultClientSettings: ClientSettings = {};
  if (settingsJson) {
    const parsed = clientSettingsSchema.safeParse(JSON.parse(settingsJson));
    if (!parsed.success) throw new Error(`--default-client-settings: ${parsed.error.message}`);
    defaultClientSettings = parsed.data;
  }
  const doveadmUrl = string("doveadm-url");
  const doveadmKeyFile = string("doveadm-api-key-file");
  if (doveadmUrl && !doveadmKeyFile) throw new Error("--doveadm-url needs --doveadm-api-key-file");
  const portalUrl = string("portal-url");
  if (portalUrl !== undefined) checkPortalUrl(portalUrl);
  const smtp = parseSmtpRelayFlags(Object.fromEntries(smtpRelayFlags.map((f) => [f, string(f)])));
  const logLevel = string("log-level") ?? defaults.logLevel;
  if (!logLevels.includes(logLevel))
    throw new Error(`--log-level must be one of ${logLevels.join(", ")}, got ${JSON.stringify(logLevel)}`);
  const passdbNamespace = string("passdb-namespace") ?? defaults.passdbNamespace;
  const inPod = podNamespace(env);
  const operatorNamespace = string("operator-namespace") ?? inPod ?? passdbNamespace;
  const sealKey = string("seal-key-secret") ?? `${operatorNamespace}/${defaultSealKeySecretName}`;
  const [sealNamespace, sealName, ...sealRest] = sealKey.split("/");
  if (!sealNamespace || !sealName || sealRest.length > 0)
    throw new Error(`--seal-key-secret must be NAMESPACE/NAME, got ${JSON.stringify(sealKey)}`);

  return {
    help: values.help === true,
    kubeconfig: string("kubeconfig"),
    logLevel,
    metricsAddr: string("metrics-addr") ?? "0",
    healthAddr: string("health-addr") ?? "0",
    leaderElection: {
      enabled: boolean("leader-elect") ?? inPod !== undefined,
      namespace: string("leader-election-namespace") ?? operatorNamespace,
      name: string("leader-election-id") ?? defaults.leaderElectionId,
    },
    gracefulShutdownMs: seconds("graceful-shutdown-timeout", defaults.gracefulShutdownMs),
    config: {
      namespaces: namespaces && namespaces.length > 0 ? namespaces : undefined,
      operatorNamespace,
      passdbNamespace,
      passdbSecretPrefix: string("passdb-secret-prefix") ?? defaults.passdbSecretPrefix,
      passdbShards: int("passdb-shards", defaults.passdbShards),
      passdbBatchWindowMs: duration("passdb-batch-window", defaults.passdbBatchWindowMs),
      passdbShardBudgetBytes: int("passdb-shard-budget-bytes", defaults.passdbShardBudgetBytes),
      passwordLength: int("password-length", defaults.passwordLength),
      argon2: {
        memoryCost: int("argon2-memory-kib", defaults.argon2.memoryCost),
        timeCost: int("argon2-iterations", defaults.argon2.timeCost),
        parallelism: int("argon2-parallelism", defaults.argon2.parallelism),
      },
      hashConcurrency: int("hash-concurrency", defaults.hashConcurrency),
      defaultClientSettings,
      maxDevicesPerAddress: int("max-devices-per-address", defaults.maxDevicesPerAddress),
      workers: int("workers", defaults.workers),
      requireMailDomain: boolean("require-mail-domain") ?? true,
      sealKeySecret: { namespace: sealNamespace, name: sealName },
      minRotationIntervalMs: duration("min-rotation-interval", defaults.minRotationIntervalMs),
      suspensionGraceMs: duration("suspension-grace", defaults.suspensionGraceMs),
      ownershipGraceMs: duration("ownership-grace", defaults.ownershipGraceMs),
      resyncPeriodMs: duration("resync-period", defaults.resyncPeriodMs),
      lastUsedPrecisionMs: seconds("last-used-precision-seconds", defaults.lastUsedPrecisionMs),
      doveadm:
        doveadmUrl && doveadmKeyFile
          ? {
              url: doveadmUrl,
              apiKeyFile: doveadmKeyFile,
              repeatAfterMs: seconds("kick-repeat-seconds", defaults.kickRepeatMs),
            }
          : undefined,
      portalUrl: portalUrl?.replace(/\/+$/, ""),
      smtp,
      invitationRetentionMs: duration("invitation-retention", defaults.invitationRetentionMs),
    },
  };
}

/** The portal's origin, as the portal itself takes its --public-url: http(s), no path, query or fragment. */
function checkPortalUrl(text: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`--portal-url is not a URL: ${JSON.stringify(text)}`);
  }
  if (!/^https?:$/.test(url.protocol) || url.pathname !== "/" || url.search || url.hash || url.username)
    throw new Error(
      `--portal-url must be an http(s) origin without a path, e.g. https://portal.example.com, got ${JSON.stringify(text)}`,
    );
}

/** The configuration with every default, for tests and embedding (as `parseCommandLine([], {})`). */
export function defaultConfig(overrides: Partial<OperatorConfig> = {}): OperatorConfig {
  return { ...parseCommandLine([], {}).config, ...overrides };
}

// `devicepass passdb-sync`: the sidecar next to Dovecot. Its command line, and the wiring from it
// to the loop in sync.ts: client, folder, report, local doveadm, health endpoints, signals.
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { logLevels } from "../config.ts";
import { serve } from "../http.ts";
import { KubeClient } from "../kube/client.ts";
import { createLogger } from "../log.ts";
import { defaultSyncReportName } from "../passdb/sync-report.ts";
import { SessionKicker, doveadmFromFile } from "../sessions/kicker.ts";
import { AddressFiles } from "./files.ts";
import { Reporter } from "./reporter.ts";
import { PassdbSync } from "./sync.ts";

export const passdbSyncUsage = `Usage: devicepass passdb-sync --dir DIR [options]

Runs next to Dovecot (a sidecar in its pod): watches the password database's shard Secrets and
keeps DIR equal to them, one file per address, each replaced atomically, so that a rotated or
revoked password stops working as soon as the operator writes its shard. Reports the shard versions
it has written and the devices' last logins in a ConfigMap of the database namespace.

Options:
  --dir DIR                      the folder Dovecot's Lua passdb reads (DEVICEPASS_PASSDB_DIR) (required)
  --kubeconfig PATH              kubeconfig to use instead of the default discovery (in a pod: its service account)
  --namespace NS                 namespace of the shard Secrets (default: devicepass-system)
  --secret-prefix NAME           name prefix of the shard Secrets (default: devicepass-passdb)
  --shards N                     number of shard Secrets, as the operator's --passdb-shards (default: 64)
  --file-mode MODE               octal mode of each file; give the folder the group Dovecot's auth
                                 workers run as (fsGroup) (default: 0440)
  --stamp-dir DIR                the Lua passdb's last-login stamps (DEVICEPASS_STAMP_DIR); none: no logins reported
  --stamp-scan-seconds N         how often to read the stamps (default: 10)
  --login-window-seconds N       report logins of this long ago at most; older stamps are removed (default: 3600)
  --report-name NAME             the report ConfigMap in the database namespace (default: ${defaultSyncReportName}; "" disables)
  --pod-name NAME                this pod's key in the report (default: $POD_NAME, else the host name)
  --report-interval-seconds N    least time between two report writes (default: 1)
  --report-max-bytes N           the largest document this pod writes; the oldest logins are left out
                                 beyond it (default: 400000; a ConfigMap holds 1 MiB for all pods)
  --doveadm-url URL              this pod's Dovecot doveadm HTTP API (http://127.0.0.1:8080/doveadm/v1): after
                                 writing an address's file, flush it from the auth cache, and kick its
                                 sessions where a password stopped working
  --doveadm-api-key-file PATH    file holding the doveadm API key (required with --doveadm-url)
  --health-addr ADDR             serve /healthz and /readyz (ready once the folder is in sync) on ADDR (default: 0, off)
  --log-level LEVEL              trace, debug, info, warn, error, fatal or silent (default: info)
  -h, --help                     show this help

Environment: DEVICEPASS_PASSDB_NAMESPACE, DEVICEPASS_PASSDB_SECRET_PREFIX, DEVICEPASS_PASSDB_SHARDS
and DEVICEPASS_LOG_LEVEL, as the operator reads them; POD_NAME.
`;

export interface PassdbSyncCommandLine {
  help: boolean;
  dir: string;
  kubeconfig: string | undefined;
  namespace: string;
  secretPrefix: string;
  shards: number;
  fileMode: number;
  stampDir: string | undefined;
  stampScanMs: number;
  loginWindowMs: number;
  report: { name: string; pod: string; minIntervalMs: number; maxBytes: number } | undefined;
  doveadm: { url: string; apiKeyFile: string } | undefined;
  healthAddr: string;
  logLevel: string;
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export function parsePassdbSyncArgs(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): PassdbSyncCommandLine {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      help: { type: "boolean", short: "h" },
      dir: { type: "string" },
      kubeconfig: { type: "string" },
      namespace: { type: "string" },
      "secret-prefix": { type: "string" },
      shards: { type: "string" },
      "file-mode": { type: "string" },
      "stamp-dir": { type: "string" },
      "stamp-scan-seconds": { type: "string" },
      "login-window-seconds": { type: "string" },
      "report-name": { type: "string" },
      "pod-name": { type: "string" },
      "report-interval-seconds": { type: "string" },
      "report-max-bytes": { type: "string" },
      "doveadm-url": { type: "string" },
      "doveadm-api-key-file": { type: "string" },
      "health-addr": { type: "string" },
      "log-level": { type: "string" },
    },
  });
  const help = values.help ?? false;
  const dir = values.dir ?? "";
  if (!help && dir === "") throw new Error("--dir is required");
  const fileModeText = values["file-mode"] ?? "0440";
  if (!/^0?[0-7]{3}$/.test(fileModeText))
    throw new Error(`--file-mode must be an octal mode such as 0440, got ${JSON.stringify(fileModeText)}`);
  const fileMode = parseInt(fileModeText, 8);
  if ((fileMode & 0o444) === 0) throw new Error("--file-mode must let someone read the files");
  const logLevel = values["log-level"] ?? env.DEVICEPASS_LOG_LEVEL ?? "info";
  if (!logLevels.includes(logLevel))
    throw new Error(`--log-level must be one of ${logLevels.join(", ")}, got ${JSON.stringify(logLevel)}`);
  const doveadmUrl = values["doveadm-url"];
  const doveadmKeyFile = values["doveadm-api-key-file"];
  if (doveadmUrl && !doveadmKeyFile) throw new Error("--doveadm-url needs --doveadm-api-key-file");
  const reportName = values["report-name"] ?? defaultSyncReportName;
  if (reportName !== "" && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(reportName))
    throw new Error(`--report-name must be a ConfigMap name, got ${JSON.stringify(reportName)}`);
  const pod = values["pod-name"] ?? env.POD_NAME ?? hostname();
  if (reportName !== "" && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(pod))
    throw new Error(`--pod-name must be a pod name, got ${JSON.stringify(pod)}`);
  return {
    help,
    dir,
    kubeconfig: values.kubeconfig,
    namespace: values.namespace ?? env.DEVICEPASS_PASSDB_NAMESPACE ?? "devicepass-system",
    secretPrefix: values["secret-prefix"] ?? env.DEVICEPASS_PASSDB_SECRET_PREFIX ?? "devicepass-passdb",
    shards: positiveInt("shards", values.shards ?? env.DEVICEPASS_PASSDB_SHARDS, 64),
    fileMode,
    stampDir: values["stamp-dir"] || undefined,
    stampScanMs: positiveInt("stamp-scan-seconds", values["stamp-scan-seconds"], 10) * 1000,
    loginWindowMs: positiveInt("login-window-seconds", values["login-window-seconds"], 3600) * 1000,
    report:
      reportName === ""
        ? undefined
        : {
            name: reportName,
            pod,
            minIntervalMs:
              positiveInt("report-interval-seconds", values["report-interval-seconds"], 1) * 1000,
            maxBytes: positiveInt("report-max-bytes", values["report-max-bytes"], 400_000),
          },
    doveadm: doveadmUrl && doveadmKeyFile ? { url: doveadmUrl, apiKeyFile: doveadmKeyFile } : undefined,
    healthAddr: values["health-addr"] ?? "0",
    logLevel,
  };
}

/** Runs the sidecar until SIGTERM or SIGINT. */
export async function runPassdbSync(args: string[]): Promise<void> {
  const cli = parsePassdbSyncArgs(args);
  if (cli.help) {
    process.stdout.write(passdbSyncUsage);
    return;
  }
  const log = createLogger(cli.logLevel, pino.destination(2)).child({ component: "passdb-sync" });
  // One watch per shard, each holding a connection for as long as it runs, plus room for requests.
  const client = await KubeClient.fromKubeconfig(cli.kubeconfig, "devicepass-passdb-sync", {
    connections: cli.shards + 8,
  });
  const files = await AddressFiles.open({ dir: cli.dir, mode: cli.fileMode });
  const reporter = cli.report
    ? new Reporter({ client, namespace: cli.namespace, log, ...cli.report })
    : undefined;
  const sessions = cli.doveadm
    ? new SessionKicker({
        cutter: doveadmFromFile(cli.doveadm.url, cli.doveadm.apiKeyFile),
        log,
        repeatAfterMs: 0,
      })
    : undefined;
  sessions?.onResult((address, outcome) => {
    if (outcome.ok) log.info({ address }, outcome.message);
    else log.warn({ address, err: outcome.message }, "doveadm failed; retrying");
  });
  const sync = new PassdbSync({
    client,
    namespace: cli.namespace,
    secretPrefix: cli.secretPrefix,
    shards: cli.shards,
    files,
    log,
    sessions,
    reporter,
    stamps: cli.stampDir
      ? { dir: cli.stampDir, scanMs: cli.stampScanMs, forgetAfterMs: cli.loginWindowMs }
      : undefined,
  });
  const server = await serve(cli.healthAddr, { probes: { healthy: () => true, ready: () => sync.synced } });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, "shutting down");
    await sync.stop();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await client.close();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));

  sync.start();
  log.info(
    {
      server: client.server,
      namespace: cli.namespace,
      shards: `${cli.secretPrefix}-00…${cli.shards - 1}`,
      dir: cli.dir,
      stampDir: cli.stampDir,
      report: cli.report ? `${cli.namespace}/${cli.report.name}[${cli.report.pod}]` : false,
      doveadm: cli.doveadm?.url ?? false,
      health: server?.address() ?? false,
    },
    "passdb-sync running",
  );
}

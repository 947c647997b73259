// `devicepass portal`: the invitation and autoconfiguration web server. It faces the internet,
// so it holds nothing but get/update of ConfigMaps in the operator's own namespace.
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { invitationNames } from "../api/names.ts";
import { logLevels, podNamespace } from "../config.ts";
import { parseListenAddress } from "../http.ts";
import { InvitationStore } from "../invitations/store.ts";
import { KubeClient } from "../kube/client.ts";
import { createLogger } from "../log.ts";
import { AutoconfigSource } from "./autoconfig-source.ts";
import { createPortalHandler } from "./server.ts";

export const portalUsage = `Usage: devicepass portal --public-url URL [options]

Serves invitation links (GET shows the invitation, the button reveals the password once) and
mail client autoconfiguration, from ConfigMaps in the operator's namespace.

Options:
  --public-url URL             the portal's public origin, e.g. https://portal.example.com
                               (links, QR codes and the Origin check of the form use it)
  --namespace NS               the operator's namespace, where invitation records live
                               (default: the pod's namespace; required outside a pod)
  --kubeconfig PATH            kubeconfig to use instead of the default discovery
  --listen ADDR                serve HTTP on ADDR, also /healthz and /readyz (default: :8080)
  --autoconfig-configmap NAME  the ConfigMap of domains' client settings (default: ${invitationNames.autoconfigConfigMap})
  --setup-minutes N            minutes the phone setup page and the .mobileconfig stay
                               available after the password was shown (default: 10)
  --forwarded-for-hops N       trusted proxies in front that append to X-Forwarded-For (an
                               Ingress controller: 1); 0 uses the peer address (default: 0)
  --log-level LEVEL            trace, debug, info, warn, error, fatal or silent (default: info)
  -h, --help                   show this help
`;

export interface PortalCommandLine {
  help: boolean;
  publicUrl: URL;
  namespace: string;
  kubeconfig: string | undefined;
  listen: string;
  autoconfigConfigMap: string;
  setupMinutes: number;
  forwardedForHops: number;
  logLevel: string;
}

function integer(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

export function parsePortalCommandLine(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): PortalCommandLine | { help: true } {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      help: { type: "boolean", short: "h" },
      "public-url": { type: "string" },
      namespace: { type: "string" },
      kubeconfig: { type: "string" },
      listen: { type: "string" },
      "autoconfig-configmap": { type: "string" },
      "setup-minutes": { type: "string" },
      "forwarded-for-hops": { type: "string" },
      "log-level": { type: "string" },
    },
  });
  if (values.help) return { help: true };
  const urlText = values["public-url"] ?? env.DEVICEPASS_PORTAL_PUBLIC_URL;
  if (!urlText) throw new Error("--public-url is required");
  let publicUrl: URL;
  try {
    publicUrl = new URL(urlText);
  } catch {
    throw new Error(`--public-url is not a URL: ${JSON.stringify(urlText)}`);
  }
  if (
    !/^https?:$/.test(publicUrl.protocol) ||
    publicUrl.pathname !== "/" ||
    publicUrl.search ||
    publicUrl.hash
  )
    throw new Error("--public-url must be an http(s) origin without a path, e.g. https://portal.example.com");
  const namespace = values.namespace ?? podNamespace(env);
  if (!namespace) throw new Error("--namespace is required outside a pod");
  const logLevel = values["log-level"] ?? "info";
  if (!logLevels.includes(logLevel)) throw new Error(`--log-level must be one of ${logLevels.join(", ")}`);
  const listen = values.listen ?? ":8080";
  parseListenAddress(listen);
  return {
    help: false,
    publicUrl,
    namespace,
    kubeconfig: values.kubeconfig,
    listen,
    autoconfigConfigMap: values["autoconfig-configmap"] ?? invitationNames.autoconfigConfigMap,
    setupMinutes: integer("setup-minutes", values["setup-minutes"], 10, 1, 60),
    forwardedForHops: integer("forwarded-for-hops", values["forwarded-for-hops"], 0, 0, 10),
    logLevel,
  };
}

export async function runPortal(args: string[]): Promise<void> {
  const cli = parsePortalCommandLine(args);
  if (cli.help) {
    process.stdout.write(portalUsage);
    return;
  }
  const log = createLogger(cli.logLevel, pino.destination(2)).child({ component: "portal" });
  const client = await KubeClient.fromKubeconfig(cli.kubeconfig, "devicepass-portal");
  const autoconfig = new AutoconfigSource(client, cli.namespace, cli.autoconfigConfigMap, log);
  autoconfig.start();
  const handler = createPortalHandler({
    store: new InvitationStore(client, cli.namespace),
    autoconfig,
    publicUrl: cli.publicUrl,
    log,
    setupMinutes: cli.setupMinutes,
    forwardedForHops: cli.forwardedForHops,
  });
  const server = createServer(
    { maxHeaderSize: 16 * 1024, requestTimeout: 30_000, headersTimeout: 10_000 },
    handler,
  );
  server.keepAliveTimeout = 5_000;
  const listen = parseListenAddress(cli.listen)!;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, resolve);
  });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, "shutting down");
    server.close(() => {
      void autoconfig
        .stop()
        .then(() => client.close())
        .then(() => process.exit(0));
    });
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  log.info(
    { address: server.address(), namespace: cli.namespace, publicUrl: cli.publicUrl.origin },
    "portal running",
  );
}

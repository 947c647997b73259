// Where the cluster is and how to authenticate, the way kubectl finds it: --kubeconfig, then
// $KUBECONFIG (the first file naming the current context), ~/.kube/config, then the in-cluster
// service account. Read with `yaml`; @kubernetes/client-node (large: its generated API costs tens
// of MiB of heap) is loaded only for the exec and auth-provider plugins it implements.
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";

export const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface ClusterConnection {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  skipTLSVerify: boolean;
  /** The Authorization header value, if any; re-read now and then (bound tokens rotate). */
  authorization: () => Promise<string | undefined>;
}

interface NamedCluster {
  name: string;
  cluster: {
    server: string;
    "certificate-authority"?: string;
    "certificate-authority-data"?: string;
    "insecure-skip-tls-verify"?: boolean;
  };
}
interface NamedUser {
  name: string;
  user?: {
    "client-certificate"?: string;
    "client-certificate-data"?: string;
    "client-key"?: string;
    "client-key-data"?: string;
    token?: string;
    tokenFile?: string;
    username?: string;
    password?: string;
    exec?: unknown;
    "auth-provider"?: unknown;
  };
}
interface KubeconfigFile {
  "current-context"?: string;
  contexts?: { name: string; context: { cluster: string; user?: string } }[];
  clusters?: NamedCluster[];
  users?: NamedUser[];
}

/** Is a cluster configured, the way kubectl looks for one? */
export function clusterConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.KUBECONFIG) return env.KUBECONFIG.split(":").some((p) => p !== "" && existsSync(p));
  if (existsSync(join(homedir(), ".kube", "config"))) return true;
  return env.KUBERNETES_SERVICE_HOST !== undefined && existsSync(join(serviceAccountDir, "token"));
}

function kubeconfigFiles(path: string | undefined, env: NodeJS.ProcessEnv): string[] {
  if (path) return [path];
  if (env.KUBECONFIG) return env.KUBECONFIG.split(":").filter((p) => p !== "" && existsSync(p));
  const home = join(homedir(), ".kube", "config");
  return existsSync(home) ? [home] : [];
}

/** kubectl's merge: the first file to set a field (or name an entry) wins. */
function merged(files: string[]): { config: KubeconfigFile; baseOf: Map<object, string> } {
  const config: Required<Pick<KubeconfigFile, "contexts" | "clusters" | "users">> & KubeconfigFile = {
    contexts: [],
    clusters: [],
    users: [],
  };
  const baseOf = new Map<object, string>();
  for (const file of files) {
    const one = (parse(readFileSync(file, "utf8")) ?? {}) as KubeconfigFile;
    config["current-context"] ??= one["current-context"];
    for (const [list, entries] of [
      [config.contexts, one.contexts],
      [config.clusters, one.clusters],
      [config.users, one.users],
    ] as [{ name: string }[], { name: string }[] | undefined][]) {
      for (const entry of entries ?? []) {
        if (list.some((e) => e.name === entry.name)) continue;
        list.push(entry);
        baseOf.set(entry, dirname(file));
      }
    }
  }
  return { config, baseOf };
}

const resolvePath = (base: string | undefined, file: string) =>
  isAbsolute(file) || !base ? file : join(base, file);

function dataOrFile(data: string | undefined, file: string | undefined, base?: string): Buffer | undefined {
  if (data) return Buffer.from(data, "base64");
  if (file) return readFileSync(resolvePath(base, file));
  return undefined;
}

/** A token file read at most once a minute: kubelet rotates projected service account tokens. */
function tokenFileReader(path: string): () => Promise<string> {
  let cached: { token: string; at: number } | undefined;
  return async () => {
    if (!cached || Date.now() - cached.at > 60_000)
      cached = { token: (await readFile(path, "utf8")).trim(), at: Date.now() };
    return `Bearer ${cached.token}`;
  };
}

function inCluster(env: NodeJS.ProcessEnv): ClusterConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? "443";
  if (!host) throw new Error("no kubeconfig found and not running in a pod");
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return {
    server: `https://${hostPart}:${port}`,
    ca: readFileSync(join(serviceAccountDir, "ca.crt")),
    skipTLSVerify: false,
    authorization: tokenFileReader(join(serviceAccountDir, "token")),
  };
}

/** Exec and auth-provider credentials: client-node implements the plugins; load it only for them. */
async function pluginAuthorization(files: string[], context: string): Promise<() => Promise<string>> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  if (files.length === 1) kc.loadFromFile(files[0]!);
  else kc.loadFromDefault();
  kc.setCurrentContext(context);
  return async () => {
    const opts: { headers: Record<string, string> } = { headers: {} };
    await kc.applyToHTTPSOptions(opts);
    return opts.headers.Authorization ?? "";
  };
}

/** The connection to the cluster: a kubeconfig (`path`, or kubectl's search), else in-cluster. */
export async function loadClusterConnection(
  path?: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ClusterConnection> {
  const files = kubeconfigFiles(path, env);
  if (files.length === 0) return inCluster(env);
  const { config, baseOf } = merged(files);
  const contextName = config["current-context"];
  const context = config.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw new Error(`the kubeconfig has no current context (${files.join(", ")})`);
  const named = config.clusters?.find((c) => c.name === context.cluster);
  if (!named) throw new Error(`the kubeconfig has no cluster ${context.cluster}`);
  const userEntry = config.users?.find((u) => u.name === context.user);
  const user = userEntry?.user ?? {};
  const clusterBase = baseOf.get(named);
  const userBase = userEntry ? baseOf.get(userEntry) : undefined;
  let authorization: () => Promise<string | undefined> = () => Promise.resolve(undefined);
  if (user.exec || user["auth-provider"]) authorization = await pluginAuthorization(files, contextName!);
  else if (user.token) authorization = () => Promise.resolve(`Bearer ${user.token}`);
  else if (user.tokenFile) authorization = tokenFileReader(resolvePath(userBase, user.tokenFile));
  else if (user.username !== undefined) {
    const basic = Buffer.from(`${user.username}:${user.password ?? ""}`).toString("base64");
    authorization = () => Promise.resolve(`Basic ${basic}`);
  }
  return {
    server: named.cluster.server.replace(/\/$/, ""),
    ca: dataOrFile(
      named.cluster["certificate-authority-data"],
      named.cluster["certificate-authority"],
      clusterBase,
    ),
    cert: dataOrFile(user["client-certificate-data"], user["client-certificate"], userBase),
    key: dataOrFile(user["client-key-data"], user["client-key"], userBase),
    skipTLSVerify: named.cluster["insecure-skip-tls-verify"] === true,
    authorization,
  };
}

// A thin Kubernetes REST client on node:https (http-client.ts): kubeconfig or in-cluster
// credentials (kubeconfig.ts), server-side apply with a field manager, status subresources,
// preconditions, watches, and classified errors. Counts requests by verb for metrics.
import type { Agent } from "node:http";
import { createInterface } from "node:readline";
import { createPool, send } from "../http-client.ts";
import { ApiError, classifyStatus } from "./errors.ts";
import { loadClusterConnection, type ClusterConnection } from "./kubeconfig.ts";

export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  namespace?: string | undefined;
  name?: string | undefined;
  subresource?: string | undefined;
}

export function resourcePath(ref: ResourceRef): string {
  const base = ref.group === "" ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  const ns = ref.namespace ? `/namespaces/${encodeURIComponent(ref.namespace)}` : "";
  const name = ref.name ? `/${encodeURIComponent(ref.name)}` : "";
  const sub = ref.subresource ? `/${ref.subresource}` : "";
  return `${base}${ns}/${ref.plural}${name}${sub}`;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface ListResult<T> {
  items: T[];
  metadata: { resourceVersion: string; continue?: string };
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

type Query = Record<string, string | number | boolean | undefined>;

export type RequestObserver = (verb: string, path: string, status: number, durationMs: number) => void;

function queryString(query: Query | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : "";
}

/** The verb Kubernetes' audit log gives a request with this method (GET is get or list: callers say). */
function verbOf(method: string): string {
  switch (method) {
    case "GET":
      return "get";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return "delete";
    default:
      return method.toLowerCase();
  }
}

export class KubeClient {
  observer: RequestObserver | undefined;

  readonly server: string;
  private readonly connection: ClusterConnection;
  private readonly pool: Agent;
  private readonly userAgent: string;

  private constructor(connection: ClusterConnection, pool: Agent, userAgent: string) {
    this.connection = connection;
    this.server = connection.server;
    this.pool = pool;
    this.userAgent = userAgent;
  }

  /** `connections`: at most this many at once (each watch holds one for as long as it runs). */
  static create(
    connection: ClusterConnection,
    userAgent = "devicepass",
    options: { connections?: number } = {},
  ): KubeClient {
    const pool = createPool(connection.server, {
      ca: connection.ca,
      cert: connection.cert,
      key: connection.key,
      rejectUnauthorized: !connection.skipTLSVerify,
      connections: options.connections ?? 32,
    });
    return new KubeClient(connection, pool, userAgent);
  }

  /** A client for the kubeconfig at `path` (or kubectl's search, or the in-cluster account). */
  static async fromKubeconfig(
    path?: string,
    userAgent?: string,
    options: { connections?: number } = {},
  ): Promise<KubeClient> {
    return KubeClient.create(await loadClusterConnection(path), userAgent, options);
  }

  private async headers(contentType?: string): Promise<Record<string, string>> {
    const h: Record<string, string> = { accept: "application/json", "user-agent": this.userAgent };
    const authorization = await this.connection.authorization();
    if (authorization) h.authorization = authorization;
    if (contentType) h["content-type"] = contentType;
    return h;
  }

  async request<T>(
    method: string,
    path: string,
    options: {
      query?: Query;
      body?: unknown;
      contentType?: string;
      signal?: AbortSignal;
      verb?: string;
      /** Resolve with the response's text instead of decoding it. */
      raw?: boolean;
    } = {},
  ): Promise<T> {
    const started = performance.now();
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    let status = 0;
    try {
      const res = await send(this.server + path + queryString(options.query), {
        method,
        headers: await this.headers(
          body === undefined ? undefined : (options.contentType ?? "application/json"),
        ),
        body,
        pool: this.pool,
        signal: options.signal,
        headersTimeoutMs: 60_000,
        bodyTimeoutMs: 60_000,
      });
      status = res.statusCode;
      const text = await res.text();
      if (status >= 200 && status < 300) {
        if (options.raw) return text as T;
        return (text ? JSON.parse(text) : undefined) as T;
      }
      let reason: string | undefined;
      let message = text;
      try {
        const parsed = JSON.parse(text) as { reason?: string; message?: string };
        reason = parsed.reason;
        message = parsed.message ?? text;
      } catch {
        // not a Status object; keep the raw text
      }
      const retryAfter = Number(res.headers["retry-after"]);
      throw new ApiError(
        classifyStatus(status, reason),
        status,
        `${method} ${path}: ${message}`,
        Number.isFinite(retryAfter) ? retryAfter : undefined,
      );
    } catch (error) {
      if (error instanceof ApiError) throw error;
      if (options.signal?.aborted) throw error;
      throw new ApiError("Unavailable", 0, `${method} ${path}: ${(error as Error).message}`);
    } finally {
      this.observer?.(options.verb ?? verbOf(method), path, status, performance.now() - started);
    }
  }

  get<T>(ref: ResourceRef, signal?: AbortSignal): Promise<T> {
    return this.request<T>("GET", resourcePath(ref), { signal });
  }

  list<T>(ref: ResourceRef, query: Query = {}): Promise<ListResult<T>> {
    return this.request<ListResult<T>>("GET", resourcePath(ref), { query, verb: "list" });
  }

  create<T>(ref: ResourceRef, object: unknown, signal?: AbortSignal): Promise<T> {
    return this.request<T>("POST", resourcePath({ ...ref, name: undefined }), { body: object, signal });
  }

  /** PUT: replaces the object whole; with metadata.resourceVersion set, only if nobody changed it. */
  replace<T>(ref: ResourceRef, object: unknown, signal?: AbortSignal): Promise<T> {
    return this.request<T>("PUT", resourcePath(ref), { body: object, signal });
  }

  /**
   * PUT, like replace(), resolving with only the new resourceVersion: the body the API server
   * returns is the whole object (a shard Secret: hundreds of KiB), and decoding it only to read
   * one field cost more than the write. Kubernetes encodes `kind`, `apiVersion`, then metadata in
   * field order (name, namespace, uid, resourceVersion, …), before any label, annotation or data,
   * so the first `"resourceVersion":"…"` of the body is the object's; failing that, it is decoded.
   */
  async replaceForVersion(ref: ResourceRef, object: unknown): Promise<string> {
    const text = await this.request<string>("PUT", resourcePath(ref), { body: object, raw: true });
    const version = /"resourceVersion":"(\d+)"/.exec(text.slice(0, 4096))?.[1];
    return version ?? (JSON.parse(text) as KubeObject).metadata.resourceVersion!;
  }

  /** Server-side apply of the fields `object` names, owned by `fieldManager`. */
  apply<T>(ref: ResourceRef, object: unknown, fieldManager: string, force = true): Promise<T> {
    return this.request<T>("PATCH", resourcePath(ref), {
      body: object,
      contentType: "application/apply-patch+yaml",
      query: { fieldManager, force },
    });
  }

  mergePatch<T>(ref: ResourceRef, patch: unknown, fieldManager: string): Promise<T> {
    return this.request<T>("PATCH", resourcePath(ref), {
      body: patch,
      contentType: "application/merge-patch+json",
      query: { fieldManager },
    });
  }

  /** DELETE; `preconditions` (uid, resourceVersion) make it fail with Conflict on a different object. */
  delete(ref: ResourceRef, preconditions?: { uid?: string; resourceVersion?: string }): Promise<unknown> {
    const body = preconditions ? { apiVersion: "v1", kind: "DeleteOptions", preconditions } : undefined;
    return this.request("DELETE", resourcePath(ref), { body });
  }

  /**
   * Streams a watch until it ends or `signal` aborts. Resolves when the server closes the
   * stream; rejects on a connection error. ERROR events reach `onEvent` like any other.
   */
  async watch<T>(
    ref: ResourceRef,
    query: Query,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const path = resourcePath(ref);
    const started = performance.now();
    const res = await send(this.server + path + queryString({ ...query, watch: true }), {
      method: "GET",
      headers: await this.headers(),
      pool: this.pool,
      signal,
      headersTimeoutMs: 60_000,
      bodyTimeoutMs: 0,
    });
    this.observer?.("watch", path, res.statusCode, performance.now() - started);
    if (res.statusCode !== 200) {
      const text = await res.text();
      const retryAfter = Number(res.headers["retry-after"]);
      throw new ApiError(
        classifyStatus(res.statusCode, undefined),
        res.statusCode,
        `watch ${path}: ${text}`,
        Number.isFinite(retryAfter) ? retryAfter : undefined,
      );
    }
    const lines = createInterface({ input: res.body, crlfDelay: Infinity });
    for await (const line of lines) {
      if (line.trim() === "") continue;
      onEvent(JSON.parse(line) as WatchEvent<T>);
    }
  }

  close(): Promise<void> {
    this.pool.destroy();
    return Promise.resolve();
  }
}

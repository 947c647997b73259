// A loopback HTTP proxy in front of the real kube-apiserver for fault tests: it forwards every
// request (watches stream through) with the admin identity, fails a chosen share of them the way
// API Priority and Fairness or an overloaded server does (429 or 503 with Retry-After), and
// records every request, so a test can count what a client did while it was refused.
import { KubeConfig } from "@kubernetes/client-node";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Agent, request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { writeFile } from "node:fs/promises";
import { stringify } from "yaml";

export interface FaultRule {
  /** Share of matching requests to refuse, 0 to 1; spread evenly (deterministic, not random). */
  rate: number;
  /** Status codes to answer with, used in turn: 429 (TooManyRequests), 500, 503, 504. */
  statuses: number[];
  /** The Retry-After header (seconds) of a refusal, as kube-apiserver sends it. Default 1. */
  retryAfterSeconds?: number;
  /** Which requests the rule applies to (default: all). */
  match?: (request: { method: string; path: string; watch: boolean }) => boolean;
  /**
   * Instead of refusing a matching watch, accept it (200) and end the stream at once, as a load
   * balancer with a short idle timeout would: a client must not take that for a healthy watch.
   */
  endWatches?: boolean;
}

export interface ProxiedRequest {
  /** performance.now() when the request arrived. */
  at: number;
  method: string;
  /** Path without the query. */
  path: string;
  watch: boolean;
  status: number;
  injected: boolean;
  userAgent: string;
}

const reasonOf: Record<number, string> = {
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

const hopByHop = new Set(["connection", "keep-alive", "proxy-connection", "upgrade", "te", "trailer"]);

export class FaultProxy {
  readonly url: string;
  readonly requests: ProxiedRequest[] = [];
  private rule: FaultRule | undefined;
  private credit = 0;
  private turn = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private readonly agent: Agent;

  private constructor(server: Server, agent: Agent, url: string) {
    this.server = server;
    this.agent = agent;
    this.url = url;
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  /** Listens on a free loopback port and forwards to the cluster of `kubeconfigPath` as its user. */
  static async start(kubeconfigPath: string): Promise<FaultProxy> {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const upstream = new URL(kc.getCurrentCluster()!.server);
    const tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
    await kc.applyToHTTPSOptions(tls);
    const agent = new Agent({ keepAlive: true, maxSockets: 64, ca: tls.ca, cert: tls.cert, key: tls.key });
    const holder: { proxy?: FaultProxy } = {};
    const server = createServer((req, res) => holder.proxy!.handle(req, res, upstream));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    holder.proxy = new FaultProxy(server, agent, `http://127.0.0.1:${address.port}`);
    return holder.proxy;
  }

  /** Refuses requests by `rule` from now on; undefined forwards everything again. */
  setFaults(rule: FaultRule | undefined): void {
    this.rule = rule;
    this.credit = 0;
    this.turn = 0;
  }

  /** Breaks every open connection (watches included), as a restarting load balancer would. */
  resetConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /** A kubeconfig that reaches the API server through this proxy (plain HTTP, no credentials). */
  async writeKubeconfig(path: string): Promise<void> {
    const config = {
      apiVersion: "v1",
      kind: "Config",
      // client-node refuses plain HTTP unless TLS verification is off (there is no TLS to verify).
      clusters: [{ name: "fault-proxy", cluster: { server: this.url, "insecure-skip-tls-verify": true } }],
      users: [{ name: "fault-proxy", user: {} }],
      contexts: [{ name: "fault-proxy", context: { cluster: "fault-proxy", user: "fault-proxy" } }],
      "current-context": "fault-proxy",
    };
    await writeFile(path, stringify(config), { mode: 0o600 });
  }

  private refuse(request: { method: string; path: string; watch: boolean }): number | undefined {
    const rule = this.rule;
    if (!rule || rule.rate <= 0 || rule.statuses.length === 0) return undefined;
    if (rule.match && !rule.match(request)) return undefined;
    this.credit += rule.rate;
    if (this.credit < 1) return undefined;
    this.credit -= 1;
    return rule.statuses[this.turn++ % rule.statuses.length];
  }

  private handle(req: IncomingMessage, res: ServerResponse, upstream: URL): void {
    const url = new URL(req.url ?? "/", "http://proxy");
    const request = {
      method: req.method ?? "GET",
      path: url.pathname,
      watch: url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1",
    };
    const record: ProxiedRequest = {
      at: performance.now(),
      ...request,
      status: 0,
      injected: false,
      userAgent: String(req.headers["user-agent"] ?? ""),
    };
    this.requests.push(record);
    const refusal = this.refuse(request);
    if (refusal !== undefined && request.watch && this.rule?.endWatches) {
      record.status = 200;
      record.injected = true;
      req.resume();
      res.writeHead(200, { "content-type": "application/json" }).end();
      return;
    }
    if (refusal !== undefined) {
      record.status = refusal;
      record.injected = true;
      const retryAfter = this.rule?.retryAfterSeconds ?? 1;
      const status = {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message:
          refusal === 429 ? "Too many requests, please try again later." : "injected by the fault proxy",
        reason: reasonOf[refusal] ?? "InternalError",
        details: { retryAfterSeconds: retryAfter },
        code: refusal,
      };
      req.resume();
      res
        .writeHead(refusal, { "content-type": "application/json", "retry-after": String(retryAfter) })
        .end(JSON.stringify(status));
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [key, value] of Object.entries(req.headers))
      if (value !== undefined && !hopByHop.has(key) && key !== "authorization" && key !== "host")
        headers[key] = value;
    const forward = httpsRequest(
      {
        protocol: "https:",
        host: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: req.url,
        headers,
        agent: this.agent,
      },
      (upstreamRes) => {
        record.status = upstreamRes.statusCode ?? 0;
        const out: Record<string, string | string[]> = {};
        for (const [key, value] of Object.entries(upstreamRes.headers))
          if (value !== undefined && !hopByHop.has(key)) out[key] = value;
        res.writeHead(upstreamRes.statusCode ?? 502, out);
        // A watch with nothing to report yet sends no body: pass its headers on at once anyway.
        res.flushHeaders();
        upstreamRes.pipe(res);
        upstreamRes.on("error", () => res.destroy());
      },
    );
    forward.on("error", () => {
      if (record.status === 0) record.status = 502;
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    // The client went away (an aborted watch): stop the upstream request too.
    res.on("close", () => forward.destroy());
    req.pipe(forward);
  }

  /** Requests that arrived in [from, to) (performance.now() times). */
  between(from: number, to = performance.now()): ProxiedRequest[] {
    return this.requests.filter((r) => r.at >= from && r.at < to);
  }

  async stop(): Promise<void> {
    this.resetConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }
}

// The operator's HTTP endpoints: /healthz (the process serves), /readyz (caches synced, and
// leading or standing by), /metrics (Prometheus).
import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";

export interface Probes {
  healthy(): boolean;
  ready(): boolean;
}

/** Parses ":8080", "127.0.0.1:8080" or "0" (disabled). */
export function parseListenAddress(address: string): { host: string | undefined; port: number } | undefined {
  if (address === "0" || address === "") return undefined;
  const i = address.lastIndexOf(":");
  const port = Number(address.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`not a listen address: ${address}`);
  const host = address.slice(0, i).replace(/^\[|\]$/g, "");
  return { host: host === "" ? undefined : host, port };
}

export async function serve(
  address: string,
  handlers: { probes?: Probes; registry?: Registry },
): Promise<Server | undefined> {
  const listen = parseListenAddress(address);
  if (!listen) return undefined;
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const probe = (ok: boolean) =>
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ok\n" : "not ready\n");
    if (path === "/healthz" || path === "/livez") return probe(handlers.probes?.healthy() ?? true);
    if (path === "/readyz") return probe(handlers.probes?.ready() ?? true);
    if (path === "/metrics" && handlers.registry) {
      const registry = handlers.registry;
      registry
        .metrics()
        .then((text) => res.writeHead(200, { "content-type": registry.contentType }).end(text))
        .catch((error: unknown) => res.writeHead(500).end(String(error)));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, resolve);
  });
  return server;
}

// A small HTTP(S) client on Node's own node:http and node:https: a keep-alive connection pool, a
// deadline for the response headers, an idle timeout for a stalled body, and abort signals. The
// operator's API client and the doveadm client use it instead of the npm undici package, whose
// own HTTP stack and WebAssembly parser cost the operator ~25 MiB of memory beside Node's.
import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

export interface PoolOptions {
  /** Connections at once to one server (each watch holds one for as long as it runs). */
  connections?: number;
  /** TLS: the CA to trust, a client certificate and key, and whether to verify the server. */
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
  rejectUnauthorized?: boolean;
}

/** A keep-alive connection pool for the scheme of `url`. */
export function createPool(url: string, options: PoolOptions = {}): HttpAgent {
  const common = {
    keepAlive: true,
    maxSockets: options.connections ?? 32,
    maxFreeSockets: 8,
    scheduling: "lifo" as const,
  };
  if (new URL(url).protocol === "http:") return new HttpAgent(common);
  return new HttpsAgent({
    ...common,
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    rejectUnauthorized: options.rejectUnauthorized ?? true,
  });
}

export interface HttpResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The body as a stream (for watches); read it whole with text(). */
  body: IncomingMessage;
  text(): Promise<string>;
}

export interface SendOptions {
  method: string;
  headers: Record<string, string>;
  body?: string | undefined;
  pool?: HttpAgent | undefined;
  signal?: AbortSignal | undefined;
  /** From sending until the response's headers arrive. */
  headersTimeoutMs: number;
  /** The longest silence while the body arrives; 0: none (a watch may be quiet for minutes). */
  bodyTimeoutMs: number;
}

/** Sends one request; resolves when the response's headers are in, rejects on a network error or timeout. */
export function send(url: string, options: SendOptions): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    const target = new URL(url);
    const headers: Record<string, string | number> = { ...options.headers };
    if (options.body !== undefined) headers["content-length"] = Buffer.byteLength(options.body);
    const req = (target.protocol === "http:" ? httpRequest : httpsRequest)(target, {
      method: options.method,
      headers,
      agent: options.pool,
      signal: options.signal,
    });
    const headersTimer = setTimeout(
      () => req.destroy(new Error(`no response headers within ${options.headersTimeoutMs} ms`)),
      options.headersTimeoutMs,
    );
    req.once("error", (error) => {
      clearTimeout(headersTimer);
      reject(error);
    });
    req.once("response", (res) => {
      clearTimeout(headersTimer);
      if (options.bodyTimeoutMs > 0)
        res.setTimeout(options.bodyTimeoutMs, () =>
          res.destroy(new Error(`the response body stalled for ${options.bodyTimeoutMs} ms`)),
        );
      resolve({
        statusCode: res.statusCode ?? 0,
        headers: res.headers,
        body: res,
        text: async () => {
          const chunks: Buffer[] = [];
          for await (const chunk of res) chunks.push(chunk as Buffer);
          return Buffer.concat(chunks).toString("utf8");
        },
      });
    });
    req.end(options.body);
  });
}

// Rate limiting of wrong links per client network, in bounded memory: a token bucket per client
// (an IPv4 address, or the /64 of an IPv6 one), at most maxClients of them, the least recently
// seen dropped first.
import { isIPv4, isIPv6 } from "node:net";

export interface RateLimitOptions {
  /** Wrong links a client may open in a burst. */
  burst: number;
  /** One more wrong link allowed per this many ms. */
  refillMs: number;
  /** Clients remembered at most. */
  maxClients: number;
}

export const defaultRateLimit: RateLimitOptions = { burst: 10, refillMs: 60_000, maxClients: 10_000 };

interface Bucket {
  tokens: number;
  at: number;
}

export class FailureRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly options: RateLimitOptions;

  constructor(options: RateLimitOptions = defaultRateLimit) {
    this.options = options;
  }

  private bucket(client: string, now: number): Bucket {
    const existing = this.buckets.get(client);
    const { burst, refillMs } = this.options;
    if (!existing) return { tokens: burst, at: now };
    const tokens = Math.min(burst, existing.tokens + (now - existing.at) / refillMs);
    return { tokens, at: now };
  }

  /** May this client try a link now? */
  allowed(client: string, now = Date.now()): boolean {
    return this.bucket(client, now).tokens >= 1;
  }

  /** Seconds until the client may try again (for Retry-After). */
  retryAfterSeconds(client: string, now = Date.now()): number {
    const b = this.bucket(client, now);
    return b.tokens >= 1 ? 0 : Math.ceil(((1 - b.tokens) * this.options.refillMs) / 1000);
  }

  /** The client opened a wrong link. */
  fail(client: string, now = Date.now()): void {
    const b = this.bucket(client, now);
    b.tokens = Math.max(0, b.tokens - 1);
    this.buckets.delete(client);
    this.buckets.set(client, b);
    while (this.buckets.size > this.options.maxClients) {
      const oldest = this.buckets.keys().next().value;
      if (oldest === undefined) break;
      this.buckets.delete(oldest);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** The rate-limit key of an address: IPv4 as it is, IPv6 by its /64 (one subscriber's network). */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIPv4(address)) return address;
  if (isIPv6(address)) return `${expandIPv6(address).slice(0, 4).join(":")}::/64`;
  return address;
}

function expandIPv6(address: string): string[] {
  const [head = "", tail = ""] = address.split("%")[0]!.split("::");
  const h = head === "" ? [] : head.split(":");
  const t = address.includes("::") ? (tail === "" ? [] : tail.split(":")) : [];
  const fill: string[] = address.includes("::") ? new Array<string>(8 - h.length - t.length).fill("0") : [];
  return [...h, ...fill, ...t].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ""));
}

/**
 * The client's address: the socket's peer, or with `hops` trusted proxies in front (an Ingress
 * controller is one), the entry of X-Forwarded-For that the outermost trusted proxy appended.
 */
export function clientAddress(
  remote: string | undefined,
  forwardedFor: string | string[] | undefined,
  hops: number,
): string {
  const peer = remote ?? "unknown";
  if (hops <= 0 || forwardedFor === undefined) return peer;
  const entries = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor)
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  const entry = entries[entries.length - hops];
  return entry !== undefined && (isIPv4(entry) || isIPv6(entry)) ? entry : peer;
}

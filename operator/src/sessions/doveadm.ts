// Cuts a mail address's open IMAP/POP3 sessions through Dovecot's doveadm HTTP API (`kick`), and
// drops the address's entries from Dovecot's auth cache (`auth cache flush`).
import { send } from "../http-client.ts";

export interface KickResult {
  ok: boolean;
  /** Sessions that were open (Dovecot reports none as exit code 68, which counts as success). */
  message: string;
}

export interface SessionCutter {
  kick(address: string): Promise<KickResult>;
  /** Forgets the address's cached logins, so that the next login reads the database again. */
  flushAuthCache(address: string): Promise<KickResult>;
}

/** doveadm's "not found": the user had no sessions to kick. */
const exitCodeNotFound = 68;

export class DoveadmClient implements SessionCutter {
  private readonly url: string;
  private readonly authorization: string;
  private readonly timeoutMs: number;

  constructor(url: string, apiKey: string, timeoutMs = 10_000) {
    this.url = url;
    // Dovecot wants the key base64-encoded (the raw key gets 401), byte for byte as it read it:
    // `doveadm_api_key = </file` keeps a trailing newline, so trimming here would mismatch.
    this.authorization = `X-Dovecot-API ${Buffer.from(apiKey, "utf8").toString("base64")}`;
    this.timeoutMs = timeoutMs;
  }

  kick(address: string): Promise<KickResult> {
    return this.run("kick", { mask: [address] }).then((r) => (r.ok ? interpretKickResponse(r.message) : r));
  }

  flushAuthCache(address: string): Promise<KickResult> {
    return this.run("authCacheFlush", { user: [address] }).then((r) =>
      r.ok ? interpretFlushResponse(r.message) : r,
    );
  }

  /** POSTs one command; ok with the body as message on HTTP 200. */
  private async run(command: string, parameters: Record<string, unknown>): Promise<KickResult> {
    const tag = `devicepass-${Date.now()}`;
    const res = await send(this.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: this.authorization },
      body: JSON.stringify([[command, parameters, tag]]),
      headersTimeoutMs: this.timeoutMs,
      bodyTimeoutMs: this.timeoutMs,
    });
    const text = await res.text();
    if (res.statusCode !== 200)
      return { ok: false, message: `doveadm answered HTTP ${res.statusCode}: ${text.slice(0, 200)}` };
    return { ok: true, message: text };
  }
}

/** Reads doveadm's answer to one `auth cache flush`: `[["doveadmResponse",[{"entries":"2"}],tag]]`. */
export function interpretFlushResponse(text: string): KickResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, message: `doveadm answered something that is not JSON: ${text.slice(0, 200)}` };
  }
  const first = Array.isArray(parsed) ? (parsed[0] as unknown[] | undefined) : undefined;
  if (Array.isArray(first) && first[0] === "doveadmResponse")
    return { ok: true, message: "The auth cache entries of the address were flushed." };
  const body: unknown = Array.isArray(first) ? first[1] : parsed;
  return { ok: false, message: `doveadm auth cache flush failed: ${JSON.stringify(body).slice(0, 200)}` };
}

/** Reads doveadm's `[[type, body, tag]]` answer to one kick command. */
export function interpretKickResponse(text: string): KickResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, message: `doveadm answered something that is not JSON: ${text.slice(0, 200)}` };
  }
  const first = Array.isArray(parsed) ? (parsed[0] as unknown[] | undefined) : undefined;
  if (!Array.isArray(first))
    return { ok: false, message: `unexpected doveadm answer: ${text.slice(0, 200)}` };
  const [type, body] = first as [string, unknown];
  if (type === "doveadmResponse") return { ok: true, message: "Open sessions were closed." };
  const exitCode = (body as { exitCode?: number } | undefined)?.exitCode;
  if (type === "error" && exitCode === exitCodeNotFound) return { ok: true, message: "No session was open." };
  return { ok: false, message: `doveadm kick failed: ${JSON.stringify(body)}` };
}

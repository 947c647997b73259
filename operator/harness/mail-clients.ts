// Minimal IMAP, POP3 and SMTP clients over node:net for end-to-end tests and benchmarks: a login
// the way a mail client does it (IMAP LOGIN, POP3 USER/PASS, SMTP EHLO + AUTH PLAIN), each from
// its own 127.x.y.z source address, because Dovecot slows every login from an address that just
// failed one (its auth penalty), which would turn expected failures into seconds of waiting.
import { connect, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";

let sourceCounter = 0;

/** A fresh loopback source address per call (Linux routes all of 127/8 to lo). */
export function nextSourceAddress(): string {
  const n = sourceCounter++ % (200 * 254 * 254);
  const last = (n % 254) + 1;
  const third = Math.floor(n / 254) % 254;
  const second = Math.floor(n / (254 * 254)) + 10; // stay clear of 127.0.0.x, which other tools use
  return `127.${second}.${third}.${last}`;
}

export interface Endpoint {
  host: string;
  port: number;
  /** Implicit TLS (IMAPS, POP3S), verified against `ca` for the name `servername`. */
  tls?: { ca: string; servername: string };
}

/** A line-oriented connection: reads CRLF-terminated lines, one waiter at a time. */
export class LineConnection {
  readonly closed: Promise<void>;
  private buffer = "";
  private readonly lines: string[] = [];
  private waiter: ((line: string | undefined) => void) | undefined;
  private ended = false;
  private readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      for (let i = this.buffer.indexOf("\n"); i >= 0; i = this.buffer.indexOf("\n")) {
        this.push(this.buffer.slice(0, i).replace(/\r$/, ""));
        this.buffer = this.buffer.slice(i + 1);
      }
    });
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.ended = true;
        this.waiter?.(undefined);
        this.waiter = undefined;
        resolve();
      }),
    );
    socket.on("error", () => {}); // reported as a close
  }

  static open(endpoint: Endpoint, timeoutMs = 15_000): Promise<LineConnection> {
    return new Promise((resolve, reject) => {
      // Loopback servers get a source address each; a node's pod is reached from the host's own address.
      const localAddress = endpoint.host.startsWith("127.") ? nextSourceAddress() : undefined;
      const { host, port, tls } = endpoint;
      const plain = connect({ host, port, localAddress });
      const socket = tls ? connectTls({ socket: plain, ca: tls.ca, servername: tls.servername }) : plain;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connecting to ${endpoint.host}:${endpoint.port} timed out`));
      }, timeoutMs);
      socket.once(tls ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        resolve(new LineConnection(socket));
      });
      socket.once("error", (error: Error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  private push(line: string): void {
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter(line);
    } else this.lines.push(line);
  }

  /** The next line; rejects when the server closes the connection or stays silent too long. */
  readLine(timeoutMs = 15_000): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (line) => {
        clearTimeout(timer);
        if (line === undefined) reject(new Error("connection closed"));
        else resolve(line);
      };
    });
  }

  /** Reads lines until one satisfies `last`; returns them all. */
  async readUntil(last: (line: string) => boolean, timeoutMs = 15_000): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.readLine(timeoutMs);
      lines.push(line);
      if (last(line)) return lines;
    }
  }

  write(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  close(): void {
    this.socket.destroy();
  }

  get isClosed(): boolean {
    return this.ended;
  }
}

export interface LoginResult {
  ok: boolean;
  /** The server's final answer to the login (never includes the password). */
  response: string;
  /** Wall time from connect to the login's answer, ms. */
  ms: number;
}

/** IMAP quoted string (RFC 3501): backslash and double quote escaped. */
function imapQuote(text: string): string {
  if (/[\r\n\0]/.test(text)) throw new Error("IMAP quoted strings cannot hold CR, LF or NUL");
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export interface ImapSession extends LoginResult {
  /** Present when the login succeeded and keepOpen was asked: the still open connection. */
  connection?: LineConnection;
}

/** IMAP LOGIN; logs out at once unless `keepOpen`, then the session stays open for the caller. */
export async function imapLogin(
  endpoint: Endpoint,
  user: string,
  password: string,
  options: { keepOpen?: boolean } = {},
): Promise<ImapSession> {
  const started = performance.now();
  const c = await LineConnection.open(endpoint);
  try {
    const greeting = await c.readLine();
    if (!greeting.startsWith("* OK")) throw new Error(`unexpected IMAP greeting: ${greeting}`);
    c.write(`a1 LOGIN ${imapQuote(user)} ${imapQuote(password)}`);
    const lines = await c.readUntil((l) => l.startsWith("a1 "));
    const response = lines.at(-1)!;
    const ms = performance.now() - started;
    const ok = response.startsWith("a1 OK");
    if (ok && options.keepOpen) return { ok, response, ms, connection: c };
    if (ok) {
      c.write("a2 LOGOUT");
      await c.readUntil((l) => l.startsWith("a2 ")).catch(() => []);
    }
    c.close();
    return { ok, response, ms };
  } catch (error) {
    c.close();
    throw error;
  }
}

/** IMAP NOOP on an open session: resolves with the tagged answer, or rejects when the server hung up. */
export async function imapNoop(connection: LineConnection, tag = "n1"): Promise<string> {
  connection.write(`${tag} NOOP`);
  const lines = await connection.readUntil((l) => l.startsWith(`${tag} `) || l.startsWith("* BYE"));
  return lines.at(-1)!;
}

/** POP3 USER + PASS, then QUIT. */
export async function pop3Login(endpoint: Endpoint, user: string, password: string): Promise<LoginResult> {
  const started = performance.now();
  const c = await LineConnection.open(endpoint);
  try {
    const greeting = await c.readLine();
    if (!greeting.startsWith("+OK")) throw new Error(`unexpected POP3 greeting: ${greeting}`);
    c.write(`USER ${user}`);
    const userAnswer = await c.readLine();
    if (!userAnswer.startsWith("+OK"))
      return { ok: false, response: userAnswer, ms: performance.now() - started };
    c.write(`PASS ${password}`);
    const response = await c.readLine();
    const ms = performance.now() - started;
    const ok = response.startsWith("+OK");
    if (ok) {
      c.write("QUIT");
      await c.readLine().catch(() => "");
    }
    return { ok, response, ms };
  } finally {
    c.close();
  }
}

export interface SmtpResult extends LoginResult {
  /** With `send`: the answer to the end of DATA (250 … queued as …), or the first refusal. */
  sendResponse?: string;
}

/** Reads one SMTP reply (possibly multi-line: `250-…` … `250 …`). */
async function smtpReply(c: LineConnection): Promise<string[]> {
  return c.readUntil((l) => /^\d{3}( |$)/.test(l));
}

/** SMTP EHLO + AUTH PLAIN, then optionally MAIL/RCPT/DATA of a small message, then QUIT. */
export async function smtpAuth(
  endpoint: Endpoint,
  user: string,
  password: string,
  options: { send?: { from: string; to: string } } = {},
): Promise<SmtpResult> {
  const started = performance.now();
  const c = await LineConnection.open(endpoint);
  try {
    const greeting = await smtpReply(c);
    if (!greeting.at(-1)!.startsWith("220"))
      throw new Error(`unexpected SMTP greeting: ${greeting.join(" | ")}`);
    c.write("EHLO devicepass-test.localhost");
    const ehlo = await smtpReply(c);
    if (!ehlo.some((l) => /^250[- ]AUTH\b.*\bPLAIN\b/.test(l)))
      throw new Error(`the SMTP server offers no AUTH PLAIN: ${ehlo.join(" | ")}`);
    c.write(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`, "utf8").toString("base64")}`);
    const response = (await smtpReply(c)).at(-1)!;
    const ms = performance.now() - started;
    const ok = response.startsWith("235");
    const result: SmtpResult = { ok, response, ms };
    if (ok && options.send) result.sendResponse = await smtpSend(c, options.send.from, options.send.to);
    c.write("QUIT");
    await smtpReply(c).catch(() => []);
    return result;
  } finally {
    c.close();
  }
}

async function smtpSend(c: LineConnection, from: string, to: string): Promise<string> {
  for (const command of [`MAIL FROM:<${from}>`, `RCPT TO:<${to}>`, "DATA"]) {
    c.write(command);
    const reply = (await smtpReply(c)).at(-1)!;
    if (!/^(250|354)/.test(reply)) return reply;
  }
  c.write(`From: <${from}>`);
  c.write(`To: <${to}>`);
  c.write("Subject: devicepass end-to-end test");
  c.write("");
  c.write("Sent with a device password.");
  c.write(".");
  return (await smtpReply(c)).at(-1)!;
}

// The portal's HTTP handler: invitation pages (GET shows, POST redeems once), the phone setup
// page and the .mobileconfig for a few minutes after, mail client autoconfiguration, and probes.
// Every response carries the same strict headers; no URL (it holds the token) is ever logged.
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { invitationNames } from "../api/names.ts";
import type { ClientSettings } from "../api/schemas.ts";
import {
  autodiscoverRequestAddress,
  autodiscoverResponse,
  domainOfAddress,
  thunderbirdConfig,
} from "../autoconfig/xml.ts";
import { generatePassword, hashPassword, type Argon2Parameters } from "../credentials/password.ts";
import { chooseLanguage, type Language } from "../invitations/messages.ts";
import { invitationStatus, type InvitationRecord } from "../invitations/record.ts";
import type { InvitationStore, Lookup } from "../invitations/store.ts";
import { isWellFormedToken } from "../invitations/token.ts";
import type { Logger } from "../log.ts";
import { portalCss, portalJs } from "./assets.ts";
import { invitationPage, phoneSetupPage, revealedPage, statusPage, type StatusPageKind } from "./pages.ts";
import { mobileconfig, mobileconfigContentType, profileAvailable, profileFileName } from "./profile.ts";
import { clientAddress, clientKey, FailureRateLimiter } from "./rate-limit.ts";
import { newSetupKey, openSetup, parseSetupKey, sealSetup } from "./setup-box.ts";

export interface AutoconfigLookup {
  settingsFor(domain: string): ClientSettings | undefined;
  readonly synced: boolean;
}

export interface PortalOptions {
  store: InvitationStore;
  autoconfig: AutoconfigLookup;
  /** The portal's public origin, e.g. https://portal.example.com: links, QR codes, the Origin check. */
  publicUrl: URL;
  log: Logger;
  /** How long the phone setup page and the profile stay available after the password was shown. */
  setupMinutes: number;
  /** Trusted proxies in front (an Ingress controller: 1); 0 uses the peer address. */
  forwardedForHops: number;
  rateLimiter?: FailureRateLimiter;
  maxBodyBytes?: number;
  now?: () => Date;
  generate?: (length: number) => string;
  hash?: (password: string, params: Argon2Parameters) => Promise<string>;
}

export const contentSecurityPolicy =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'";

/** The headers of every response. */
export function securityHeaders(https: boolean): Record<string, string> {
  return {
    "cache-control": "no-store",
    pragma: "no-cache",
    "referrer-policy": "no-referrer",
    "content-security-policy": contentSecurityPolicy,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), clipboard-write=(self)",
    "x-robots-tag": "noindex, nofollow",
    ...(https ? { "strict-transport-security": "max-age=31536000" } : {}),
  };
}

const statusCodes: Record<StatusPageKind, number> = {
  used: 410,
  expired: 410,
  revoked: 410,
  unknown: 404,
  rateLimited: 429,
  setupExpired: 410,
  formExpired: 403,
  unavailable: 503,
  notFound: 404,
  method: 405,
  tooLarge: 413,
};

class BodyTooLarge extends Error {}

/** The request body, at most `limit` bytes (larger: BodyTooLarge, and the rest is not read). */
async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > limit) throw new BodyTooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

const csrfPattern = /^[A-Za-z0-9_-]{43}$/;

type Route =
  | { name: "invitation"; token: string }
  | { name: "setup" | "profile"; token: string; key: string }
  | { name: "asset"; file: "css" | "js" }
  | { name: "autoconfig" | "autodiscover" | "healthz" | "readyz" }
  | { name: "none" };

const allowedMethods: Record<Route["name"], string[]> = {
  invitation: ["GET", "HEAD", "POST"],
  setup: ["GET", "HEAD"],
  profile: ["GET", "HEAD"],
  asset: ["GET", "HEAD"],
  autoconfig: ["GET", "HEAD"],
  autodiscover: ["POST"],
  healthz: ["GET", "HEAD"],
  readyz: ["GET", "HEAD"],
  none: ["GET", "HEAD"],
};

function route(path: string): Route {
  let m = /^\/i\/([^/]+)$/.exec(path);
  if (m) return { name: "invitation", token: m[1]! };
  m = /^\/i\/([^/]+)\/(setup|profile)\/([^/]+)$/.exec(path);
  if (m) return { name: m[2] as "setup" | "profile", token: m[1]!, key: m[3]! };
  if (path === "/static/portal.css") return { name: "asset", file: "css" };
  if (path === "/static/portal.js") return { name: "asset", file: "js" };
  if (path === "/.well-known/autoconfig/mail/config-v1.1.xml" || path === "/mail/config-v1.1.xml")
    return { name: "autoconfig" };
  if (path.toLowerCase() === "/autodiscover/autodiscover.xml") return { name: "autodiscover" };
  if (path === "/healthz" || path === "/livez") return { name: "healthz" };
  if (path === "/readyz") return { name: "readyz" };
  return { name: "none" };
}

export function createPortalHandler(
  options: PortalOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const https = options.publicUrl.protocol === "https:";
  const origin = options.publicUrl.origin;
  const headers = securityHeaders(https);
  const limiter = options.rateLimiter ?? new FailureRateLimiter();
  const maxBody = options.maxBodyBytes ?? 16 * 1024;
  const now = options.now ?? (() => new Date());
  const generate = options.generate ?? ((length: number) => generatePassword(length));
  const hash = options.hash ?? hashPassword;
  const log = options.log;
  const csrfCookie = https ? "__Host-devicepass-csrf" : "devicepass-csrf";
  const setupMs = options.setupMinutes * 60_000;

  const send = (
    res: ServerResponse,
    status: number,
    type: string,
    body: string | Buffer,
    extra: Record<string, string | string[]> = {},
  ) => {
    res.writeHead(status, {
      ...headers,
      "content-type": type,
      "content-length": String(Buffer.byteLength(body)),
      ...extra,
    });
    res.end(body);
  };
  const page = (
    res: ServerResponse,
    status: number,
    html: string,
    extra: Record<string, string | string[]> = {},
  ) => send(res, status, "text/html; charset=utf-8", html, extra);
  const status = (
    res: ServerResponse,
    language: Language,
    kind: StatusPageKind,
    params: Record<string, string> = {},
    extra: Record<string, string | string[]> = {},
  ) => page(res, statusCodes[kind], statusPage(language, kind, params), extra);

  /** The page for a record that gives no password (used, expired, revoked) or none at all. */
  const closedPage = (res: ServerResponse, language: Language, lookup: Lookup) => {
    if (lookup.kind !== "found") return status(res, language, "unknown");
    const record = lookup.record;
    const s = invitationStatus(record, now());
    if (s === "redeemed") return status(res, language, "used", { redeemedAt: record.data.redeemedAt ?? "" });
    if (s === "expired") return status(res, language, "expired", { expiresAt: record.invitation.expiresAt });
    // The operator revokes a link that expired unredeemed, and says so: the person sees "expired".
    if (s === "revoked")
      return record.configMap.metadata.annotations?.[invitationNames.revokedBecauseAnnotation] === "Expired"
        ? status(res, language, "expired", { expiresAt: record.invitation.expiresAt })
        : status(res, language, "revoked");
    return status(res, language, "unavailable");
  };

  /** Looks the token up; a malformed or unknown token counts against the client's budget. */
  const findRecord = async (token: string, client: string): Promise<Lookup> => {
    if (!isWellFormedToken(token)) {
      limiter.fail(client);
      return { kind: "unknown" };
    }
    const lookup = await options.store.lookup(token);
    if (lookup.kind === "invalid")
      log.error({ reason: lookup.reason }, "an invitation record does not parse");
    if (lookup.kind !== "found") limiter.fail(client);
    return lookup;
  };

  const showInvitation = async (req: IncomingMessage, res: ServerResponse, token: string, client: string) => {
    const lookup = await findRecord(token, client);
    const language = chooseLanguage(
      req.headers["accept-language"],
      lookup.kind === "found" ? lookup.record.invitation.language : undefined,
    );
    if (lookup.kind !== "found" || invitationStatus(lookup.record, now()) !== "pending")
      return closedPage(res, language, lookup);
    // Double-submit cookie: the value is reused while it exists, so two open tabs both work.
    const existing = cookies(req).get(csrfCookie);
    const csrf = existing && csrfPattern.test(existing) ? existing : randomBytes(32).toString("base64url");
    const cookie = `${csrfCookie}=${csrf}; Path=/; HttpOnly; SameSite=Strict${https ? "; Secure" : ""}`;
    page(res, 200, invitationPage(language, lookup.record.invitation, `/i/${token}`, csrf), {
      "set-cookie": cookie,
    });
  };

  /** A POST from our own page: same origin (where the browser says), a form body, matching CSRF values. */
  const csrfOk = (req: IncomingMessage, body: string): boolean => {
    const site = req.headers["sec-fetch-site"];
    if (site !== undefined && site !== "same-origin") return false;
    // Under Referrer-Policy no-referrer browsers send "Origin: null" with a form POST; then only
    // Sec-Fetch-Site (which the policy does not touch) can say where the form came from.
    const from = req.headers.origin;
    if (from === "null" ? site !== "same-origin" : from !== undefined && from !== origin) return false;
    if (!(req.headers["content-type"] ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded"))
      return false;
    const field = new URLSearchParams(body).get("csrf") ?? "";
    const cookie = cookies(req).get(csrfCookie) ?? "";
    if (!csrfPattern.test(field) || !csrfPattern.test(cookie)) return false;
    return timingSafeEqual(Buffer.from(field), Buffer.from(cookie));
  };

  const redeem = async (req: IncomingMessage, res: ServerResponse, token: string, client: string) => {
    const started = performance.now();
    let body: string;
    try {
      body = await readBody(req, 4096);
    } catch (error) {
      if (error instanceof BodyTooLarge)
        return status(
          res,
          chooseLanguage(req.headers["accept-language"]),
          "tooLarge",
          {},
          { connection: "close" },
        );
      throw error;
    }
    const language0 = chooseLanguage(req.headers["accept-language"]);
    if (!csrfOk(req, body)) return status(res, language0, "formExpired");
    const lookup = await findRecord(token, client);
    const language = chooseLanguage(
      req.headers["accept-language"],
      lookup.kind === "found" ? lookup.record.invitation.language : undefined,
    );
    if (lookup.kind !== "found" || invitationStatus(lookup.record, now()) !== "pending")
      return closedPage(res, language, lookup);
    const record = lookup.record;
    const { invitation } = record;
    const password = generate(invitation.passwordLength);
    const passwordHash = await hash(password, invitation.argon2);
    const key = newSetupKey();
    const recordName = record.configMap.metadata.name;
    const redeemedAt = now();
    const result = await options.store.redeem(record, {
      passwordHash,
      redeemedAt,
      setup: {
        ciphertext: sealSetup(key, recordName, password),
        expiresAt: new Date(redeemedAt.getTime() + setupMs),
      },
    });
    if (result.kind === "lost") {
      log.info(
        { device: `${invitation.device.namespace}/${invitation.device.name}` },
        "another request redeemed or revoked the invitation first",
      );
      return closedPage(res, language, result.now);
    }
    log.info(
      {
        device: `${invitation.device.namespace}/${invitation.device.name}`,
        redeemMs: Math.round(performance.now() - started),
      },
      "redeemed an invitation",
    );
    // The ciphertext goes when its time is over (the operator removes it too, should this replica stop).
    setTimeout(
      () =>
        void options.store
          .expireSetup(recordName, now)
          .catch((e: unknown) =>
            log.warn({ err: (e as Error).message }, "could not remove the setup ciphertext"),
          ),
      setupMs + 1000,
    ).unref();
    const keyText = key.toString("base64url");
    page(
      res,
      200,
      revealedPage(language, invitation, password, {
        phoneUrl: `${origin}/i/${token}/setup/${keyText}`,
        profilePath: profileAvailable(invitation) ? `/i/${token}/profile/${keyText}` : undefined,
        minutes: options.setupMinutes,
      }),
    );
  };

  /** The password of a redeemed record within its setup window, with a key from the page that showed it. */
  const openedSetup = async (
    req: IncomingMessage,
    res: ServerResponse,
    token: string,
    keyText: string,
    client: string,
  ): Promise<{ record: InvitationRecord; password: string; language: Language } | undefined> => {
    const lookup = await findRecord(token, client);
    const language = chooseLanguage(
      req.headers["accept-language"],
      lookup.kind === "found" ? lookup.record.invitation.language : undefined,
    );
    if (lookup.kind !== "found") return void status(res, language, "unknown");
    const record = lookup.record;
    if (record.data.state !== "redeemed") return void closedPage(res, language, lookup);
    const key = parseSetupKey(keyText);
    const box = record.data.setupCiphertext;
    const open = Date.parse(record.data.setupExpiresAt ?? "") > now().getTime();
    const password = key && box && open ? openSetup(key, record.configMap.metadata.name, box) : undefined;
    if (password === undefined) {
      if (!key || (open && box)) limiter.fail(client); // a wrong key is a wrong link
      if (box && !open) await options.store.expireSetup(record.configMap.metadata.name, now).catch(() => {});
      return void status(res, language, "setupExpired");
    }
    return { record, password, language };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<string> => {
    const method = req.method ?? "GET";
    let path: string;
    let query: URLSearchParams;
    try {
      const url = new URL(req.url ?? "/", "http://portal.invalid");
      path = url.pathname;
      query = url.searchParams;
    } catch {
      return (void send(res, 400, "text/plain; charset=utf-8", "bad request\n"), "bad");
    }
    const r = route(path);
    const language = chooseLanguage(req.headers["accept-language"]);
    if (!allowedMethods[r.name].includes(method)) {
      status(res, language, "method", {}, { allow: allowedMethods[r.name].join(", ") });
      return r.name;
    }
    // A GET has no body; anything declaring a large one is refused before it is read.
    if (method !== "POST" && Number(req.headers["content-length"] ?? "0") > maxBody) {
      status(res, language, "tooLarge", {}, { connection: "close" });
      return r.name;
    }
    const client = clientKey(
      clientAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], options.forwardedForHops),
    );
    switch (r.name) {
      case "healthz":
        send(res, 200, "text/plain; charset=utf-8", "ok\n");
        break;
      case "readyz":
        send(
          res,
          options.autoconfig.synced ? 200 : 503,
          "text/plain; charset=utf-8",
          options.autoconfig.synced ? "ok\n" : "not ready\n",
        );
        break;
      case "asset":
        if (r.file === "css") send(res, 200, "text/css; charset=utf-8", portalCss);
        else send(res, 200, "text/javascript; charset=utf-8", portalJs);
        break;
      case "invitation":
      case "setup":
      case "profile": {
        if (!limiter.allowed(client)) {
          status(
            res,
            language,
            "rateLimited",
            {},
            { "retry-after": String(limiter.retryAfterSeconds(client)) },
          );
          break;
        }
        if (r.name === "invitation") {
          if (method === "POST") await redeem(req, res, r.token, client);
          else await showInvitation(req, res, r.token, client);
          break;
        }
        const opened = await openedSetup(req, res, r.token, r.key, client);
        if (!opened) break;
        const { record, password } = opened;
        const available = profileAvailable(record.invitation);
        if (r.name === "setup") {
          const minutesLeft = Math.max(
            1,
            Math.ceil((Date.parse(record.data.setupExpiresAt!) - now().getTime()) / 60_000),
          );
          page(
            res,
            200,
            phoneSetupPage(
              opened.language,
              record.invitation,
              password,
              available ? `/i/${r.token}/profile/${r.key}` : undefined,
              minutesLeft,
            ),
          );
        } else if (!available) status(res, opened.language, "notFound");
        else
          send(res, 200, mobileconfigContentType, mobileconfig(record.invitation, password), {
            "content-disposition": `attachment; filename="${profileFileName(record.invitation)}"`,
          });
        break;
      }
      case "autoconfig": {
        const host = (req.headers.host ?? "")
          .replace(/:\d+$/, "")
          .toLowerCase()
          .replace(/^autoconfig\./, "");
        const domain = domainOfAddress(query.get("emailaddress")) ?? (host.includes(".") ? host : undefined);
        const settings = domain ? options.autoconfig.settingsFor(domain) : undefined;
        if (!domain || !settings)
          send(res, 404, "text/plain; charset=utf-8", "no configuration for this domain\n");
        else send(res, 200, "application/xml; charset=utf-8", thunderbirdConfig(domain, settings));
        break;
      }
      case "autodiscover": {
        let body: string;
        try {
          body = await readBody(req, maxBody);
        } catch (error) {
          if (error instanceof BodyTooLarge) {
            status(res, language, "tooLarge", {}, { connection: "close" });
            break;
          }
          throw error;
        }
        const address = autodiscoverRequestAddress(body);
        const domain = domainOfAddress(address);
        const settings = domain ? options.autoconfig.settingsFor(domain) : undefined;
        if (!address || !settings)
          send(res, 404, "text/plain; charset=utf-8", "no configuration for this address\n");
        else send(res, 200, "text/xml; charset=utf-8", autodiscoverResponse(address, settings));
        break;
      }
      case "none":
        status(res, language, "notFound");
        break;
    }
    return r.name;
  };

  return (req, res) => {
    const started = performance.now();
    handle(req, res)
      .then((name) =>
        log.debug(
          {
            method: req.method,
            route: name,
            status: res.statusCode,
            ms: Math.round(performance.now() - started),
          },
          "request",
        ),
      )
      .catch((error: unknown) => {
        log.error({ err: (error as Error).message, method: req.method }, "request failed");
        if (!res.headersSent) status(res, chooseLanguage(req.headers["accept-language"]), "unavailable");
        else res.destroy();
      });
  };
}

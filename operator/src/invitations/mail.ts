// The invitation e-mail: composed from the message catalogue (plain text and HTML, in the
// person's language where known), sent through the SMTP relay the chart configures, with
// nodemailer. The operator calls sendInvitationMail with the link; nothing here logs the link.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { defaultLanguage, formatDate, message, type Language } from "./messages.ts";
import type { Invitation } from "./record.ts";

export interface InvitationMail {
  subject: string;
  text: string;
  html: string;
  language: Language;
}

function escape(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", '"': "quot", "'": "#39" }[c]};`,
  );
}

/** The e-mail for one invitation link. */
export function composeInvitationMail(
  invitation: Invitation,
  link: string,
  language?: Language,
): InvitationMail {
  const lang = language ?? invitation.language ?? defaultLanguage;
  const params = {
    displayName: invitation.displayName,
    address: invitation.address,
    invitedBy: invitation.invitedBy ?? "",
    expiresAt: formatDate(lang, invitation.expiresAt),
  };
  const m = (key: Parameters<typeof message>[1]) => message(lang, key, params);
  const intro = invitation.invitedBy ? m("mailIntroBy") : m("mailIntro");
  const text = [
    m("mailGreeting"),
    "",
    intro,
    "",
    m("mailAction"),
    "",
    link,
    "",
    m("mailExpiry"),
    "",
    m("mailIgnore"),
    "",
    "-- ",
    m("siteName"),
    "",
  ].join("\n");
  const e = (key: Parameters<typeof message>[1]) => escape(m(key));
  const html = `<!doctype html>
<html lang="${lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escape(m("mailSubject"))}</title></head>
<body style="margin:0;padding:24px 12px;background:#f3f5f9;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2430;line-height:1.5">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr><td align="center">
<table role="presentation" width="560" cellpadding="0" cellspacing="0" style="max-width:560px;background:#ffffff;border:1px solid #d9dee7;border-radius:12px">
<tr><td style="padding:24px 28px">
<p style="margin:0 0 12px;font-weight:700;color:#1f5fbf">${e("siteName")}</p>
<p style="margin:0 0 12px">${e("mailGreeting")}</p>
<p style="margin:0 0 12px">${escape(intro)}</p>
<p style="margin:0 0 20px">${e("mailAction")}</p>
<p style="margin:0 0 20px"><a href="${escape(link)}" style="display:inline-block;background:#1f5fbf;color:#ffffff;text-decoration:none;font-weight:600;padding:12px 22px;border-radius:8px">${e("mailButton")}</a></p>
<p style="margin:0 0 12px;font-size:14px;color:#5b6575;word-break:break-all">${escape(link)}</p>
<p style="margin:0 0 12px">${e("mailExpiry")}</p>
<p style="margin:0;font-size:14px;color:#5b6575">${e("mailIgnore")}</p>
</td></tr></table>
</td></tr></table>
</body>
</html>
`;
  return { subject: m("mailSubject"), text, html, language: lang };
}

export const smtpSecurities = ["starttls", "tls", "none"] as const;

export interface SmtpRelay {
  host: string;
  port: number;
  /** starttls: upgrade required; tls: implicit TLS (port 465); none: plaintext (loopback and tests only). */
  security: (typeof smtpSecurities)[number];
  /** The From address of invitation e-mails. */
  from: string;
  /** A folder holding files `username` and `password` (a mounted kubernetes.io/basic-auth Secret). */
  credentialsDir?: string | undefined;
  /** PEM file of the CA that signed the relay's certificate, when it is not a public one. */
  caFile?: string | undefined;
}

export interface SentInvitation {
  messageId: string;
  /** The relay's answer to the end of the message, e.g. `250 2.0.0 Ok: queued as …`. */
  response: string;
}

/** The relay's credentials, read anew for each message so that a rotated Secret takes effect. */
async function readCredentials(dir: string): Promise<{ user: string; pass: string }> {
  const read = async (name: string) => (await readFile(join(dir, name), "utf8")).replace(/\r?\n$/, "");
  return { user: await read("username"), pass: await read("password") };
}

/** Sends one invitation e-mail through the relay; rejects with the relay's error (retry with backoff). */
export async function sendInvitationMail(
  relay: SmtpRelay,
  to: string,
  invitation: Invitation,
  link: string,
  language?: Language,
): Promise<SentInvitation> {
  const mail = composeInvitationMail(invitation, link, language);
  // Loaded on the first e-mail: an operator without a relay never pays its ~20 MiB.
  const { createTransport } = await import("nodemailer");
  const transport = createTransport({
    host: relay.host,
    port: relay.port,
    secure: relay.security === "tls",
    requireTLS: relay.security === "starttls",
    ignoreTLS: relay.security === "none",
    ...(relay.credentialsDir ? { auth: await readCredentials(relay.credentialsDir) } : {}),
    tls: { minVersion: "TLSv1.2", ...(relay.caFile ? { ca: await readFile(relay.caFile, "utf8") } : {}) },
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 30_000,
    logger: false,
  });
  try {
    // The SMTP transport answers with its SMTPSentMessageInfo (the overloads lose the type).
    const info = (await transport.sendMail({
      from: relay.from,
      to,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      headers: {
        "Auto-Submitted": "auto-generated",
        "X-Auto-Response-Suppress": "All",
        "Content-Language": mail.language,
      },
    })) as unknown as { messageId: string; response: string };
    return { messageId: info.messageId, response: info.response };
  } finally {
    transport.close();
  }
}

/** The operator's flags for the relay (their help is in config.ts's table of flags). */
export const smtpRelayFlags = [
  "smtp-host",
  "smtp-port",
  "smtp-security",
  "smtp-from",
  "smtp-credentials-dir",
  "smtp-ca-file",
] as const;

const defaultPorts = { starttls: 587, tls: 465, none: 25 } as const;

/** The relay from the flags; undefined without --smtp-host. Throws naming the flag at fault. */
export function parseSmtpRelayFlags(
  values: Partial<Record<(typeof smtpRelayFlags)[number], string | undefined>>,
): SmtpRelay | undefined {
  const host = values["smtp-host"];
  if (!host) {
    const stray = Object.entries(values).find(([, v]) => v !== undefined);
    if (stray) throw new Error(`--${stray[0]} needs --smtp-host`);
    return undefined;
  }
  const security = values["smtp-security"] ?? "starttls";
  if (!(smtpSecurities as readonly string[]).includes(security))
    throw new Error(
      `--smtp-security must be one of ${smtpSecurities.join(", ")}, got ${JSON.stringify(security)}`,
    );
  const mode = security as SmtpRelay["security"];
  const port = values["smtp-port"] === undefined ? defaultPorts[mode] : Number(values["smtp-port"]);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`--smtp-port must be a port number, got ${JSON.stringify(values["smtp-port"])}`);
  const from = values["smtp-from"];
  if (!from || !/^([^<>\r\n]*<)?[^@\s<>]+@[^@\s<>]+>?$/.test(from.trim()))
    throw new Error(
      `--smtp-from must be a mail address (optionally "Name <address>"), got ${JSON.stringify(from ?? "")}`,
    );
  return {
    host,
    port,
    security: mode,
    from: from.trim(),
    credentialsDir: values["smtp-credentials-dir"],
    caFile: values["smtp-ca-file"],
  };
}

// The portal's HTML pages, rendered on the server from the message catalogue: they work without
// JavaScript (the one script only adds the copy button) and load nothing from other sites.
import encodeQR from "qr";
import type { ClientSettings, MailProtocol } from "../api/schemas.ts";
import type { Invitation } from "../invitations/record.ts";
import { formatDate, message, type Language, type MessageKey } from "../invitations/messages.ts";

export function htmlEscape(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", '"': "quot", "'": "#39" }[c]};`,
  );
}

/** Message text, HTML-escaped, with escaped parameters. */
function t(language: Language, key: MessageKey, params: Record<string, string> = {}): string {
  return htmlEscape(message(language, key, params));
}

/** A message whose parameters are shown emphasised (escaped first, then wrapped). */
function tStrong(language: Language, key: MessageKey, params: Record<string, string>): string {
  // Placeholders become markers that survive escaping, then the escaped values in <strong>.
  const marked = Object.fromEntries(Object.keys(params).map((k, i) => [k, `[[${i}]]`]));
  const values = Object.values(params);
  return htmlEscape(message(language, key, marked)).replace(
    /\[\[(\d+)\]\]/g,
    (_all, i: string) => `<strong>${htmlEscape(values[Number(i)]!)}</strong>`,
  );
}

const iconPaths: Record<Invitation["icon"], string> = {
  phone: '<rect x="15" y="5" width="18" height="38" rx="3"/><path d="M21 38h6"/>',
  tablet: '<rect x="9" y="5" width="30" height="38" rx="3"/><path d="M21 38h6"/>',
  laptop: '<rect x="10" y="10" width="28" height="20" rx="2"/><path d="M5 36h38l-3-6H8z"/>',
  desktop: '<rect x="6" y="8" width="36" height="24" rx="2"/><path d="M18 40h12M24 32v8"/>',
  watch:
    '<rect x="14" y="14" width="20" height="20" rx="5"/><path d="M18 14l2-9h8l2 9M18 34l2 9h8l2-9M24 19v5l3 3"/>',
  server:
    '<rect x="8" y="7" width="32" height="14" rx="2"/><rect x="8" y="27" width="32" height="14" rx="2"/><path d="M14 14h2M14 34h2"/>',
  other: '<rect x="8" y="8" width="32" height="32" rx="6"/><path d="M17 24h14M24 17v14"/>',
};

const iconLabel: Record<Invitation["icon"], MessageKey> = {
  phone: "iconPhone",
  tablet: "iconTablet",
  laptop: "iconLaptop",
  desktop: "iconDesktop",
  watch: "iconWatch",
  server: "iconServer",
  other: "iconOther",
};

function deviceIcon(language: Language, icon: Invitation["icon"]): string {
  return `<svg class="icon" viewBox="0 0 48 48" role="img" aria-label="${t(language, iconLabel[icon])}" fill="none" stroke="currentColor" stroke-width="2.5" stroke-linecap="round" stroke-linejoin="round">${iconPaths[icon]}</svg>`;
}

export interface PageOptions {
  language: Language;
  /** Pages with the copy button load the portal's one script. */
  script?: boolean;
}

function layout(options: PageOptions, body: string): string {
  const { language } = options;
  return `<!doctype html>
<html lang="${language}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${t(language, "pageTitle")}</title>
<link rel="stylesheet" href="/static/portal.css">
${options.script ? '<script src="/static/portal.js" defer></script>\n' : ""}</head>
<body>
<main>
<p class="brand">${t(language, "siteName")}</p>
${body}
</main>
<footer>${t(language, "footer")}</footer>
</body>
</html>
`;
}

function deviceCard(language: Language, invitation: Invitation): string {
  return `<div class="device">${deviceIcon(language, invitation.icon)}<div><p class="device-name">${htmlEscape(invitation.displayName)}</p><p class="device-address">${htmlEscape(invitation.address)}</p></div></div>`;
}

/** GET of a pending link: what the invitation is, and the one button. Consumes nothing. */
export function invitationPage(
  language: Language,
  invitation: Invitation,
  formAction: string,
  csrf: string,
): string {
  const intro = invitation.invitedBy
    ? tStrong(language, "inviteIntroBy", { invitedBy: invitation.invitedBy, address: invitation.address })
    : tStrong(language, "inviteIntro", { address: invitation.address });
  const facts: [MessageKey, string][] = [
    ...(invitation.invitedBy ? [["invitedByLabel", invitation.invitedBy] as [MessageKey, string]] : []),
    ["expiresLabel", formatDate(language, invitation.expiresAt)],
  ];
  return layout(
    { language },
    `<h1>${t(language, "inviteHeading")}</h1>
<p>${intro}</p>
${deviceCard(language, invitation)}
<dl class="facts">
${facts.map(([k, v]) => `<dt>${t(language, k)}</dt><dd>${htmlEscape(v)}</dd>`).join("\n")}
</dl>
<p>${t(language, "revealExplain")}</p>
<form method="post" action="${htmlEscape(formAction)}">
<input type="hidden" name="csrf" value="${htmlEscape(csrf)}">
<button type="submit" class="primary">${t(language, "revealButton")}</button>
</form>`,
  );
}

const protocolTitle: Record<MailProtocol, MessageKey> = {
  imap: "incomingImap",
  pop3: "incomingPop3",
  smtp: "outgoingSmtp",
};

function settingsTables(language: Language, invitation: Invitation): string {
  const rows = (["imap", "pop3", "smtp"] as const)
    .filter((p) => invitation.protocols.includes(p))
    .map((p) => [p, invitation.clientSettings[p]] as const)
    .filter(
      (entry): entry is readonly [MailProtocol, NonNullable<ClientSettings["imap"]>] =>
        entry[1] !== undefined,
    )
    .map(
      ([p, e]) =>
        `<tr data-protocol="${p}"><th scope="row">${t(language, protocolTitle[p])}</th><td>${htmlEscape(e.host)}</td><td>${e.port}</td><td>${htmlEscape(e.security)}</td></tr>`,
    );
  if (rows.length === 0) return `<p>${t(language, "noSettings")}</p>`;
  return `<dl class="facts"><dt>${t(language, "userNameLabel")}</dt><dd class="username">${htmlEscape(invitation.address)}</dd></dl>
<table class="settings">
<thead><tr><td></td><th scope="col">${t(language, "serverLabel")}</th><th scope="col">${t(language, "portLabel")}</th><th scope="col">${t(language, "securityLabel")}</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>`;
}

function passwordBlock(language: Language, password: string): string {
  return `<p class="warning">${t(language, "revealedWarning")}</p>
<div class="password-row">
<p class="password-label">${t(language, "passwordLabel")}</p>
<output id="password" class="password">${htmlEscape(password)}</output>
<button type="button" class="copy" data-copy="password" data-copied="${t(language, "copiedButton")}" hidden>${t(language, "copyButton")}</button>
</div>`;
}

/** A QR code of `text` as inline SVG (markup, so the CSP needs no image source for it). */
export function qrSvg(text: string, label: string): string {
  const svg = encodeQR(text, "svg", { ecc: "medium", border: 4 });
  return svg.replace(
    "<svg ",
    `<svg class="qr" role="img" aria-label="${htmlEscape(label)}" shape-rendering="crispEdges" `,
  );
}

export interface RevealedSetup {
  /** Absolute URL of the phone's setup page (the QR code). */
  phoneUrl: string;
  /** Path of the .mobileconfig download; undefined when no profile can be built. */
  profilePath: string | undefined;
  minutes: number;
}

/** After the button: the password, once, with the settings, the QR code and the profile. */
export function revealedPage(
  language: Language,
  invitation: Invitation,
  password: string,
  setup: RevealedSetup | undefined,
): string {
  const minutes = String(setup?.minutes ?? 0);
  return layout(
    { language, script: true },
    `<h1>${t(language, "revealedHeading")}</h1>
${deviceCard(language, invitation)}
${passwordBlock(language, password)}
<h2>${t(language, "settingsHeading")}</h2>
${settingsTables(language, invitation)}
${
  setup
    ? `<section class="phone">
<h2>${t(language, "phoneHeading")}</h2>
<div class="qr-row">${qrSvg(setup.phoneUrl, message(language, "phoneHeading"))}<p>${t(language, "phoneExplain", { minutes })}</p></div>
</section>
${profileSection(language, setup.profilePath, minutes)}`
    : ""
}
<p class="done">${t(language, "doneHint")}</p>`,
  );
}

function profileSection(language: Language, profilePath: string | undefined, minutes: string): string {
  if (!profilePath) return "";
  return `<section class="profile">
<h2>${t(language, "profileHeading")}</h2>
<p><a class="button" id="profile" href="${htmlEscape(profilePath)}">${t(language, "profileLink")}</a></p>
<p class="muted">${t(language, "profileExplain", { minutes })}</p>
</section>`;
}

/** The phone's page (opened from the QR code): the same password and settings, and the profile. */
export function phoneSetupPage(
  language: Language,
  invitation: Invitation,
  password: string,
  profilePath: string | undefined,
  minutes: number,
): string {
  return layout(
    { language, script: true },
    `<h1>${t(language, "setupHeading")}</h1>
${deviceCard(language, invitation)}
${passwordBlock(language, password)}
${profileSection(language, profilePath, String(minutes))}
<h2>${t(language, "settingsHeading")}</h2>
${settingsTables(language, invitation)}`,
  );
}

export type StatusPageKind =
  | "used"
  | "expired"
  | "revoked"
  | "unknown"
  | "rateLimited"
  | "setupExpired"
  | "formExpired"
  | "unavailable"
  | "notFound"
  | "method"
  | "tooLarge";

/** A page that says why nothing is shown, and nothing else. */
export function statusPage(
  language: Language,
  kind: StatusPageKind,
  params: Record<string, string> = {},
): string {
  const heading = `${kind}Heading` as MessageKey;
  const body = `${kind}Body` as MessageKey;
  const p = Object.fromEntries(
    Object.entries(params).map(([k, v]) => [k, /At$/.test(k) ? formatDate(language, v) : v]),
  );
  return layout(
    { language },
    `<div class="status" data-status="${kind}">
<h1>${t(language, heading)}</h1>
<p>${t(language, body, p)}</p>
</div>`,
  );
}

// Autoconfiguration answers mail clients understand: Thunderbird's config-v1.1.xml (also the
// IETF mailmaint autoconfig draft's format) and Outlook's POX Autodiscover response. Both
// depend only on the domain's settings, so an unknown address of a known domain gets the same
// answer as a known one: nothing tells which addresses exist.
import { mailAddressPattern, type ClientSettings } from "../api/schemas.ts";

export function xmlEscape(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", '"': "quot", "'": "apos" }[c]};`,
  );
}

const mailAddress = new RegExp(mailAddressPattern);

/** The domain of a mail address given by a client, lower-case; undefined unless it is one. */
export function domainOfAddress(address: string | null | undefined): string | undefined {
  if (!address || address.length > 254 || !mailAddress.test(address)) return undefined;
  return address.slice(address.lastIndexOf("@") + 1).toLowerCase();
}

const socketType = { "SSL/TLS": "SSL", STARTTLS: "STARTTLS" } as const;

/** Thunderbird's autoconfig file for `domain`; the user name is the address the person typed. */
export function thunderbirdConfig(domain: string, settings: ClientSettings): string {
  const server = (element: "incomingServer" | "outgoingServer", type: string, e: ClientSettings["imap"]) =>
    e
      ? `    <${element} type="${type}">
      <hostname>${xmlEscape(e.host)}</hostname>
      <port>${e.port}</port>
      <socketType>${socketType[e.security]}</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </${element}>
`
      : "";
  const d = xmlEscape(domain);
  return `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="${d}">
    <domain>${d}</domain>
    <displayName>${d}</displayName>
    <displayShortName>${d}</displayShortName>
${server("incomingServer", "imap", settings.imap)}${server("incomingServer", "pop3", settings.pop3)}${server("outgoingServer", "smtp", settings.smtp)}  </emailProvider>
</clientConfig>
`;
}

export const autodiscoverNamespaces = {
  request: "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006",
  response: "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006",
  outlookResponse: "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
} as const;

/**
 * The address of an Outlook POX Autodiscover request (`<EMailAddress>` of its body). The body is
 * small and never parsed as full XML: no entities, no DTDs, nothing expanded.
 */
export function autodiscoverRequestAddress(body: string): string | undefined {
  const match =
    /<(?:[A-Za-z][\w.-]*:)?EMailAddress\s*>\s*([^<\s]{3,254})\s*<\/(?:[A-Za-z][\w.-]*:)?EMailAddress\s*>/.exec(
      body,
    );
  return match?.[1];
}

/** Outlook's POX Autodiscover response (MS-OXDSCLI) with IMAP, POP3 and SMTP for `address`. */
export function autodiscoverResponse(address: string, settings: ClientSettings): string {
  const protocol = (type: string, e: ClientSettings["imap"], smtp = false) =>
    e
      ? `      <Protocol>
        <Type>${type}</Type>
        <Server>${xmlEscape(e.host)}</Server>
        <Port>${e.port}</Port>
        <DomainRequired>off</DomainRequired>
        <LoginName>${xmlEscape(address)}</LoginName>
        <SPA>off</SPA>
        <SSL>on</SSL>
        <AuthRequired>on</AuthRequired>
${smtp ? "        <UsePOPAuth>on</UsePOPAuth>\n        <SMTPLast>off</SMTPLast>\n" : ""}        <Encryption>${e.security === "STARTTLS" ? "TLS" : "SSL"}</Encryption>
      </Protocol>
`
      : "";
  return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="${autodiscoverNamespaces.response}">
  <Response xmlns="${autodiscoverNamespaces.outlookResponse}">
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
${protocol("IMAP", settings.imap)}${protocol("POP3", settings.pop3)}${protocol("SMTP", settings.smtp, true)}    </Account>
  </Response>
</Autodiscover>
`;
}

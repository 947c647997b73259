// The Apple configuration profile (.mobileconfig) of a redeemed invitation: one
// com.apple.mail.managed payload with the IMAP (or POP3) and SMTP settings and the password,
// built as an XML property list with the plist library.
import { randomUUID } from "node:crypto";
import { build as buildPlist } from "plist";
import type { Invitation } from "../invitations/record.ts";

export const mobileconfigContentType = "application/x-apple-aspen-config";

/** The reverse-DNS prefix of devicepass's payload identifiers. */
const identifierPrefix = "io.devicepass.mail";

/** Can a profile be built: Apple Mail needs an incoming (IMAP or POP3) and an outgoing server. */
export function profileAvailable(invitation: Invitation): boolean {
  const s = invitation.clientSettings;
  const allowed = new Set(invitation.protocols);
  return (
    ((allowed.has("imap") && !!s.imap) || (allowed.has("pop3") && !!s.pop3)) &&
    allowed.has("smtp") &&
    !!s.smtp
  );
}

/**
 * The profile's XML. Identifiers follow the device's uid, so installing a newer profile of the
 * same device replaces the older one; PayloadUUIDs are new each time, as Apple asks.
 */
export function mobileconfig(invitation: Invitation, password: string, uuid = randomUUID): string {
  const s = invitation.clientSettings;
  const useImap = invitation.protocols.includes("imap") && s.imap !== undefined;
  const incoming = useImap ? s.imap : s.pop3;
  const outgoing = s.smtp;
  if (!incoming || !outgoing || !profileAvailable(invitation))
    throw new Error("no incoming and outgoing settings");
  const id = `${identifierPrefix}.${invitation.device.uid}`;
  const mail = {
    PayloadType: "com.apple.mail.managed",
    PayloadVersion: 1,
    PayloadIdentifier: `${id}.account`,
    PayloadUUID: uuid().toUpperCase(),
    PayloadDisplayName: invitation.displayName,
    EmailAccountDescription: invitation.address,
    EmailAccountName: invitation.displayName,
    EmailAccountType: useImap ? "EmailTypeIMAP" : "EmailTypePOP",
    EmailAddress: invitation.address,
    IncomingMailServerAuthentication: "EmailAuthPassword",
    IncomingMailServerHostName: incoming.host,
    IncomingMailServerPortNumber: incoming.port,
    // Apple's one switch covers implicit TLS and STARTTLS alike: on for both.
    IncomingMailServerUseSSL: true,
    IncomingMailServerUsername: invitation.address,
    IncomingPassword: password,
    OutgoingMailServerAuthentication: "EmailAuthPassword",
    OutgoingMailServerHostName: outgoing.host,
    OutgoingMailServerPortNumber: outgoing.port,
    OutgoingMailServerUseSSL: true,
    OutgoingMailServerUsername: invitation.address,
    OutgoingPasswordSameAsIncomingPassword: true,
    OutgoingPassword: password,
    PreventMove: false,
    SMIMEEnabled: false,
  };
  return buildPlist({
    PayloadType: "Configuration",
    PayloadVersion: 1,
    PayloadIdentifier: id,
    PayloadUUID: uuid().toUpperCase(),
    PayloadDisplayName: `${invitation.displayName} (${invitation.address})`,
    PayloadDescription: `Mail for ${invitation.address}`,
    PayloadOrganization: "devicepass",
    PayloadRemovalDisallowed: false,
    PayloadContent: [mail],
  });
}

/** A file name for the download: the address, made safe. */
export function profileFileName(invitation: Invitation): string {
  return `${invitation.address.replace(/[^A-Za-z0-9@._-]/g, "_")}.mobileconfig`;
}

// The .mobileconfig parses as a property list with one com.apple.mail.managed payload.
import { parse } from "plist";
import { describe, expect, it } from "vitest";
import type { Invitation } from "../invitations/record.ts";
import { invitation } from "./fixtures.test-support.ts";
import { mobileconfig, profileAvailable, profileFileName } from "./profile.ts";

describe("the Apple configuration profile", () => {
  it("parses as a property list with one com.apple.mail.managed IMAP and SMTP payload", () => {
    const xml = mobileconfig(invitation, "s3cret&<>");
    expect(xml).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<!DOCTYPE plist PUBLIC "-\/\/Apple\/\/DTD PLIST 1.0\/\/EN"/,
    );
    const profile = parse(xml) as Record<string, unknown>;
    expect(profile).toMatchObject({
      PayloadType: "Configuration",
      PayloadVersion: 1,
      PayloadIdentifier: "io.devicepass.mail.0b5c6a8e-2f6f-4d7e-9e57-6d1c3c3b9a11",
      PayloadRemovalDisallowed: false,
    });
    expect(profile.PayloadUUID).toMatch(/^[0-9A-F-]{36}$/);
    const content = profile.PayloadContent as Record<string, unknown>[];
    expect(content).toHaveLength(1);
    expect(content[0]).toMatchObject({
      PayloadType: "com.apple.mail.managed",
      PayloadVersion: 1,
      EmailAccountType: "EmailTypeIMAP",
      EmailAddress: "alice@example.com",
      EmailAccountName: "Alice's <iPhone> & co",
      IncomingMailServerHostName: "imap.example.com",
      IncomingMailServerPortNumber: 993,
      IncomingMailServerUseSSL: true,
      IncomingMailServerUsername: "alice@example.com",
      IncomingMailServerAuthentication: "EmailAuthPassword",
      IncomingPassword: "s3cret&<>",
      OutgoingMailServerHostName: "smtp.example.com",
      OutgoingMailServerPortNumber: 587,
      OutgoingMailServerUseSSL: true,
      OutgoingMailServerUsername: "alice@example.com",
      OutgoingPasswordSameAsIncomingPassword: true,
      OutgoingPassword: "s3cret&<>",
    });
    expect(content[0]!.PayloadUUID).not.toBe(profile.PayloadUUID);
    // Ports are integers, switches booleans: Apple refuses strings there.
    expect(xml).toMatch(/<key>IncomingMailServerPortNumber<\/key>\s*<integer>993<\/integer>/);
    expect(xml).toMatch(/<key>IncomingMailServerUseSSL<\/key>\s*<true\/>/);
  });

  it("uses POP3 for a device without IMAP, and needs SMTP", () => {
    const pop = { ...invitation, protocols: ["pop3", "smtp"] as Invitation["protocols"] };
    const content = (parse(mobileconfig(pop, "p")) as { PayloadContent: Record<string, unknown>[] })
      .PayloadContent[0]!;
    expect(content).toMatchObject({
      EmailAccountType: "EmailTypePOP",
      IncomingMailServerHostName: "pop.example.com",
    });
    expect(profileAvailable({ ...invitation, protocols: ["imap"] })).toBe(false);
    expect(
      profileAvailable({ ...invitation, clientSettings: { imap: invitation.clientSettings.imap } }),
    ).toBe(false);
    expect(() => mobileconfig({ ...invitation, protocols: ["imap"] }, "p")).toThrow();
    expect(profileFileName({ ...invitation, address: 'a"b@example.com' })).toBe(
      "a_b@example.com.mobileconfig",
    );
  });
});

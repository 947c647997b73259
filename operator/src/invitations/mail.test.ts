// The invitation e-mail: both parts carry the link, in the person's language, with every value
// escaped in the HTML part.
import { describe, expect, it } from "vitest";
import { invitation } from "../portal/fixtures.test-support.ts";
import { composeInvitationMail, parseSmtpRelayFlags } from "./mail.ts";

const link = "https://portal.example.com/i/AAAA";

describe("the invitation e-mail", () => {
  it("is in English by default and in the invitation's language where known", () => {
    const en = composeInvitationMail({ ...invitation, displayName: "Alice's iPhone" }, link);
    expect(en.subject).toBe("Set up Alice's iPhone for alice@example.com");
    expect(en.text).toContain(
      "admin invited you to set up the device “Alice's iPhone” for the mail address alice@example.com.",
    );
    expect(en.text).toContain(`\n\n${link}\n\n`);
    expect(en.text).toContain("31 December 2026 at 00:00 UTC");
    const es = composeInvitationMail({ ...invitation, language: "es" }, link);
    expect(es.language).toBe("es");
    expect(es.subject).toMatch(/^Configure /);
    expect(es.html).toContain('<html lang="es">');
    expect(composeInvitationMail({ ...invitation, language: "es" }, link, "en").language).toBe("en");
  });

  it("escapes the device's name and who invited in the HTML part, and links the button", () => {
    const mail = composeInvitationMail({ ...invitation, invitedBy: "<b>x</b>" }, link);
    expect(mail.html).not.toContain("<iPhone>");
    expect(mail.html).not.toContain("<b>x</b>");
    expect(mail.html).toContain("&lt;b&gt;x&lt;/b&gt;");
    expect(mail.html.match(/<a href="([^"]+)"/)?.[1]).toBe(link);
    expect(mail.html).not.toMatch(/<script|<img|https?:\/\/(?!portal\.example\.com)/);
  });

  it("says nothing of who invited when nobody is known", () => {
    const mail = composeInvitationMail({ ...invitation, invitedBy: undefined }, link);
    expect(mail.text).toContain("You are invited to set up the device");
  });
});

describe("the relay's flags", () => {
  it("give no relay without a host, and refuse relay flags without one", () => {
    expect(parseSmtpRelayFlags({})).toBeUndefined();
    expect(() => parseSmtpRelayFlags({ "smtp-from": "a@b.c" })).toThrow(/--smtp-from needs --smtp-host/);
  });

  it("default the port from the security, and check each flag", () => {
    expect(
      parseSmtpRelayFlags({ "smtp-host": "relay", "smtp-from": "devicepass <noreply@example.com>" }),
    ).toEqual({
      host: "relay",
      port: 587,
      security: "starttls",
      from: "devicepass <noreply@example.com>",
      credentialsDir: undefined,
      caFile: undefined,
    });
    expect(
      parseSmtpRelayFlags({ "smtp-host": "relay", "smtp-security": "tls", "smtp-from": "a@b.c" })?.port,
    ).toBe(465);
    expect(() =>
      parseSmtpRelayFlags({ "smtp-host": "relay", "smtp-from": "a@b.c", "smtp-security": "ssl" }),
    ).toThrow(/--smtp-security/);
    expect(() =>
      parseSmtpRelayFlags({ "smtp-host": "relay", "smtp-from": "a@b.c", "smtp-port": "0" }),
    ).toThrow(/--smtp-port/);
    expect(() => parseSmtpRelayFlags({ "smtp-host": "relay" })).toThrow(/--smtp-from/);
    expect(() => parseSmtpRelayFlags({ "smtp-host": "relay", "smtp-from": "a@b.c\r\nBcc: x@y.z" })).toThrow(
      /--smtp-from/,
    );
  });
});

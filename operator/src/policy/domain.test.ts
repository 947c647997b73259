import { describe, expect, it } from "vitest";
import type { MailDevice, MailDomain } from "../api/schemas.ts";
import {
  deviceProtocolsUnder,
  domainAdmits,
  domainOf,
  inheritedClientSettings,
  selectorMatches,
} from "./domain.ts";

const domain = (spec: MailDomain["spec"]): MailDomain => ({
  apiVersion: "mail.devicepass.io/v1alpha1",
  kind: "MailDomain",
  metadata: { name: "example.com", uid: "u", resourceVersion: "1", creationTimestamp: "" },
  spec,
});
const device = (protocols?: MailDevice["spec"]["protocols"]): MailDevice =>
  ({ spec: { address: "a", displayName: "d", icon: "other", protocols } }) as MailDevice;

describe("domainOf", () => {
  it("takes the part after the last @, lower-case", () => {
    expect(domainOf("Alice@Example.COM")).toBe("example.com");
  });
});

describe("selectorMatches", () => {
  const labels = { team: "mail", env: "prod" };
  it.each([
    [{}, true],
    [{ matchLabels: { team: "mail" } }, true],
    [{ matchLabels: { team: "web" } }, false],
    [{ matchExpressions: [{ key: "env", operator: "In" as const, values: ["prod", "staging"] }] }, true],
    [{ matchExpressions: [{ key: "env", operator: "NotIn" as const, values: ["prod"] }] }, false],
    [{ matchExpressions: [{ key: "missing", operator: "NotIn" as const, values: ["x"] }] }, true],
    [{ matchExpressions: [{ key: "team", operator: "Exists" as const }] }, true],
    [{ matchExpressions: [{ key: "team", operator: "DoesNotExist" as const }] }, false],
    [
      {
        matchLabels: { team: "mail" },
        matchExpressions: [{ key: "env", operator: "In" as const, values: ["dev"] }],
      },
      false,
    ],
  ])("%j → %s", (selector, expected) => {
    expect(selectorMatches(selector, labels)).toBe(expected);
  });
});

describe("domainAdmits", () => {
  it("admits a listed namespace or one whose labels match, either one being enough", () => {
    const d = domain({ namespaces: ["mail"], namespaceSelector: { matchLabels: { tenant: "acme" } } });
    expect(domainAdmits(d, "mail", {})).toBe(true);
    expect(domainAdmits(d, "other", { tenant: "acme" })).toBe(true);
    expect(domainAdmits(d, "other", { tenant: "evil" })).toBe(false);
  });

  it("admits no one without rules, and no one by selector when the namespace is unknown", () => {
    expect(domainAdmits(domain({}), "mail", {})).toBe(false);
    expect(domainAdmits(domain({ namespaceSelector: {} }), "mail", undefined)).toBe(false);
    expect(domainAdmits(domain({ namespaceSelector: {} }), "mail", {})).toBe(true);
  });
});

describe("inheritedClientSettings", () => {
  it("takes each protocol from the address, else the domain, else the operator", () => {
    const op = {
      imap: { host: "op", port: 1, security: "SSL/TLS" as const },
      smtp: { host: "op", port: 2, security: "STARTTLS" as const },
    };
    const dom = {
      imap: { host: "dom", port: 3, security: "SSL/TLS" as const },
      pop3: { host: "dom", port: 4, security: "SSL/TLS" as const },
    };
    const addr = { pop3: { host: "addr", port: 5, security: "STARTTLS" as const } };
    expect(inheritedClientSettings(op, dom, addr)).toEqual({
      imap: dom.imap,
      pop3: addr.pop3,
      smtp: op.smtp,
    });
  });
});

describe("deviceProtocolsUnder", () => {
  const smtpOnly = domain({ devicePolicy: { allowedProtocols: ["smtp"] } });
  it("gives devices without a choice every allowed protocol", () => {
    expect(deviceProtocolsUnder(device(), undefined).protocols).toEqual(["imap", "pop3", "smtp"]);
    expect(deviceProtocolsUnder(device(), smtpOnly).protocols).toEqual(["smtp"]);
  });
  it("names the requested protocols the domain forbids", () => {
    expect(deviceProtocolsUnder(device(["imap", "smtp"]), smtpOnly)).toEqual({
      protocols: ["smtp"],
      forbidden: ["imap"],
    });
  });
});

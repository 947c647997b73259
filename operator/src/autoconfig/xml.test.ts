// Autoconfiguration answers: they validate against the formats' schemas (xmllint, Debian's
// libxml2), depend only on the domain, and escape whatever a setting holds.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  desiredAutoconfigData,
  desiredAutoconfigConfigMap,
  inheritSettings,
  parseAutoconfigData,
} from "./data.ts";
import {
  autodiscoverRequestAddress,
  autodiscoverResponse,
  domainOfAddress,
  thunderbirdConfig,
} from "./xml.ts";

const schemas = join(import.meta.dirname, "schemas");
const dir = mkdtempSync(join(tmpdir(), "devicepass-xml-"));

/** xmllint's verdict: "validates", or its error output. */
function xmllint(xml: string, schema?: string): string {
  const file = join(dir, `doc-${Math.random().toString(36).slice(2)}.xml`);
  writeFileSync(file, xml);
  try {
    execFileSync("xmllint", ["--noout", ...(schema ? ["--schema", join(schemas, schema)] : []), file], {
      stdio: "pipe",
    });
    return "validates";
  } catch (error) {
    return String((error as { stderr?: Buffer }).stderr ?? error);
  }
}

const full = {
  imap: { host: "imap.example.com", port: 993, security: "SSL/TLS" as const },
  pop3: { host: "pop.example.com", port: 995, security: "SSL/TLS" as const },
  smtp: { host: "smtp.example.com", port: 587, security: "STARTTLS" as const },
};

describe("Thunderbird's config-v1.1.xml", () => {
  it("validates against the format's schema, with every protocol and with one", () => {
    expect(xmllint(thunderbirdConfig("example.com", full), "config-v1.1.xsd")).toBe("validates");
    expect(xmllint(thunderbirdConfig("example.com", { smtp: full.smtp }), "config-v1.1.xsd")).toBe(
      "validates",
    );
  });

  it("says SSL for implicit TLS and STARTTLS for STARTTLS, and the address as user name", () => {
    const xml = thunderbirdConfig("example.com", full);
    expect(xml).toContain(
      '<incomingServer type="imap">\n      <hostname>imap.example.com</hostname>\n      <port>993</port>\n      <socketType>SSL</socketType>',
    );
    expect(xml).toContain(
      '<outgoingServer type="smtp">\n      <hostname>smtp.example.com</hostname>\n      <port>587</port>\n      <socketType>STARTTLS</socketType>',
    );
    expect(xml.match(/<username>%EMAILADDRESS%<\/username>/g)).toHaveLength(3);
  });

  it("escapes what a setting holds", () => {
    const xml = thunderbirdConfig("example.com", {
      imap: { host: `a<b>&"c'`, port: 1, security: "STARTTLS" },
    });
    expect(xmllint(xml)).toBe("validates");
    expect(xml).toContain("<hostname>a&lt;b&gt;&amp;&quot;c&apos;</hostname>");
  });
});

describe("Outlook's POX Autodiscover", () => {
  it("validates against the response schema, Encryption TLS for STARTTLS", () => {
    const xml = autodiscoverResponse("alice@example.com", full);
    expect(xmllint(xml, "autodiscover-response.xsd")).toBe("validates");
    expect(xml).toMatch(/<Type>SMTP<\/Type>[\s\S]*<Encryption>TLS<\/Encryption>/);
    expect(xml).toMatch(/<Type>IMAP<\/Type>[\s\S]*<Encryption>SSL<\/Encryption>/);
    expect(xml.match(/<LoginName>alice@example.com<\/LoginName>/g)).toHaveLength(3);
  });

  it("reads the address of a request, and nothing else of it", () => {
    const request = `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>alice@example.com</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`;
    expect(autodiscoverRequestAddress(request)).toBe("alice@example.com");
    expect(
      autodiscoverRequestAddress(
        '<!DOCTYPE x [<!ENTITY e "alice@example.com">]><EMailAddress>&e;</EMailAddress>',
      ),
    ).toBe("&e;");
    expect(domainOfAddress("&e;")).toBeUndefined();
    expect(autodiscoverRequestAddress("<Request/>")).toBeUndefined();
  });
});

describe("the autoconfig ConfigMap", () => {
  const defaults = { imap: { host: "mail.default.test", port: 143, security: "STARTTLS" as const } };

  it("holds each domain's settings over the operator defaults, sorted, lower-case", () => {
    const data = desiredAutoconfigData(
      [
        { name: "Example.ORG", clientSettings: { smtp: full.smtp } },
        { name: "example.com", clientSettings: full },
        { name: "bare.test" },
        { name: "not a domain", clientSettings: full },
      ],
      defaults,
    );
    expect(Object.keys(data)).toEqual(["bare.test", "example.com", "example.org"]);
    expect(JSON.parse(data["example.org"]!)).toEqual({ imap: defaults.imap, smtp: full.smtp });
    expect(JSON.parse(data["example.com"]!)).toEqual(full);
    expect(parseAutoconfigData(data).get("bare.test")).toEqual(defaults);
    expect(desiredAutoconfigConfigMap("ns", [], {}).metadata).toMatchObject({
      name: "devicepass-autoconfig",
      namespace: "ns",
    });
    expect(inheritSettings(undefined, {})).toEqual({});
  });

  it("is read defensively: entries that do not parse are skipped", () => {
    const parsed = parseAutoconfigData({
      "a.test": "{",
      "b.test": '{"imap":{"host":"h","port":0,"security":"SSL/TLS"}}',
      "c.test": JSON.stringify(full),
    });
    expect([...parsed.keys()]).toEqual(["c.test"]);
  });
});

// The user constructs: the cdk8s example app synthesizes exactly the YAML examples, and a spec the
// schemas reject fails when it is declared, not when it is applied.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { App, Chart } from "cdk8s";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { exampleApp } from "../../../examples/cdk8s/main.ts";
import { MailAddress, MailDevice } from "./index.ts";

const examples = join(import.meta.dirname, "..", "..", "..", "examples");

interface Named {
  kind: string;
  metadata: { name: string };
}
const byKindAndName = (a: Named, b: Named) =>
  `${a.kind}/${a.metadata.name}` < `${b.kind}/${b.metadata.name}` ? -1 : 1;

function yamlExamples(...folders: string[]): Named[] {
  return folders
    .flatMap((folder) =>
      readdirSync(join(examples, folder))
        .filter((f) => f.endsWith(".yaml"))
        .flatMap((f) => parseAllDocuments(readFileSync(join(examples, folder, f), "utf8"))),
    )
    .map((d) => d.toJS() as Named)
    .sort(byKindAndName);
}

describe("examples/cdk8s", () => {
  it("synthesizes the same objects as examples/mail/ and examples/domain/", () => {
    const synthesized = exampleApp()
      .charts.flatMap((c) => c.toJson() as Named[])
      .sort(byKindAndName);
    expect(synthesized).toEqual(yamlExamples("mail", "domain"));
  });
});

describe("MailDevice and MailAddress", () => {
  const chart = () => new Chart(new App(), "test");

  it("take the address as a construct or by name, and label the device with it", () => {
    const c = chart();
    const alice = new MailAddress(c, "alice", { address: "alice@example.com" });
    const byConstruct = new MailDevice(c, "iphone", { address: alice, displayName: "Alice's iPhone" });
    const byName = new MailDevice(c, "ipad", {
      address: "alice",
      displayName: "Alice's iPad",
      icon: "tablet",
    });
    expect(byConstruct.toJson()).toMatchObject({
      metadata: { labels: { "mail.devicepass.io/address": alice.name } },
      spec: { address: alice.name, displayName: "Alice's iPhone" },
    });
    // Defaults (icon: other) are the API server's to apply: nothing is written that was not said.
    expect((byConstruct.toJson() as { spec: object }).spec).not.toHaveProperty("icon");
    expect(byName.toJson()).toMatchObject({ spec: { address: "alice", icon: "tablet" } });
  });

  it("reject what the API server would reject", () => {
    const c = chart();
    expect(() => new MailAddress(c, "bad", { address: "not an address" })).toThrow(/must be a mail address/);
    expect(() => new MailDevice(c, "long", { address: "alice", displayName: "x".repeat(65) })).toThrow(
      /MailDevice long/,
    );
    expect(
      () =>
        new MailDevice(c, "icon", {
          address: "alice",
          displayName: "Fridge",
          icon: "fridge" as "other",
        }),
    ).toThrow(/icon/);
    expect(
      () =>
        new MailDevice(c, "user", {
          address: "alice",
          displayName: "Bob's laptop",
          user: { name: "Bob", email: "bob" },
        }),
    ).toThrow(/user.email must be a mail address/);
  });
});

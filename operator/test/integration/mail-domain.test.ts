// The tenant boundary: a MailDomain (cluster administrators) admits namespaces; only addresses in
// admitted namespaces get credentials, with the domain's settings and device policy. kubectl acts
// as two identities: the cluster administrator, and a namespace editor (impersonated).
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { adminKubectl, eventually } from "../support.ts";
import { accepts, passdbEntries, readyCondition, secretData, useOperator } from "../operator-support.ts";

const admin = adminKubectl();
const domainName = `acme-${randomBytes(3).toString("hex")}.test`;
const env = useOperator("team", { namespaces: 2, config: { requireMailDomain: true } });
const teamA = {
  get name() {
    return env.namespaces[0]!;
  },
};
const teamB = {
  get name() {
    return env.namespaces[1]!;
  },
};
const passdbNs = {
  get name() {
    return env.passdbNamespace;
  },
};

const domain = (spec: Record<string, unknown>) => ({
  apiVersion: "mail.devicepass.io/v1alpha1",
  kind: "MailDomain",
  metadata: { name: domainName },
  spec,
});
const mailbox = (name: string, local: string, extra: Record<string, unknown> = {}) => [
  {
    apiVersion: "mail.devicepass.io/v1alpha1",
    kind: "MailAddress",
    metadata: { name },
    spec: { address: `${local}@${domainName}`, ...extra },
  },
  {
    apiVersion: "mail.devicepass.io/v1alpha1",
    kind: "MailDevice",
    metadata: { name: `${name}-phone` },
    spec: { address: name, displayName: "Phone" },
  },
];
const applyAll = (namespace: string, objects: unknown[]) =>
  admin.ok(["apply", "-n", namespace, "-f", "-"], objects.map((o) => stringify(o)).join("---\n"));
const devicesInDb = async () =>
  (await passdbEntries(admin, passdbNs.name))
    .filter((e) => e.address.endsWith(`@${domainName}`))
    .map((e) => e.device)
    .sort();

beforeAll(async () => {
  // A namespace editor of team-b, as kubectl impersonates them.
  await admin.ok([
    "create",
    "rolebinding",
    "jane-edit",
    "-n",
    teamB.name,
    "--clusterrole=edit",
    "--user=jane",
  ]);
});
afterAll(async () => {
  await admin.run(["delete", "maildomain", domainName, "--ignore-not-found"]);
});

describe("MailDomain", () => {
  it("is refused to a namespace editor, who cannot create or change it", async () => {
    const can = await admin.run(["auth", "can-i", "create", "maildomains", "--as=jane"]);
    expect(can.stdout.trim()).toBe("no");
    const create = await admin.run(
      ["apply", "--as=jane", "-f", "-"],
      stringify(domain({ namespaces: [teamB.name] })),
    );
    expect(create.code).not.toBe(0);
    expect(create.stderr).toContain("forbidden");
    expect(create.stderr).toContain('User "jane" cannot');
  });

  it("is named after a domain", async () => {
    const bad = { ...domain({}), metadata: { name: "not_a_domain" } };
    const result = await admin.run(["apply", "-f", "-"], stringify(bad));
    expect(result.code).not.toBe(0);
  });

  it("without it, an address issues nothing (DomainNotFound)", async () => {
    await applyAll(teamA.name, mailbox("alice", "alice"));
    await eventually(async () => {
      const ready = await readyCondition(admin, "mailaddress", teamA.name, "alice");
      expect(ready).toMatchObject({ status: "False", reason: "DomainNotFound" });
      expect(ready?.message).toContain(`No MailDomain ${domainName} exists`);
      expect(await readyCondition(admin, "maildevice", teamA.name, "alice-phone")).toMatchObject({
        reason: "DomainNotFound",
      });
    });
    expect(await devicesInDb()).toEqual([]);
  });

  it("admitting no one, gives nothing to anyone, not even to the older claim", async () => {
    await admin.ok(["apply", "-f", "-"], stringify(domain({})));
    await applyAll(teamB.name, mailbox("ceo", "alice")); // team-b claims the same mailbox, later
    await eventually(async () => {
      expect(await readyCondition(admin, "mailaddress", teamA.name, "alice")).toMatchObject({
        reason: "NamespaceNotAllowed",
      });
      expect(await readyCondition(admin, "mailaddress", teamB.name, "ceo")).toMatchObject({
        reason: "NamespaceNotAllowed",
      });
    });
    expect(await devicesInDb()).toEqual([]);
  });

  it("admits by name or by label; an unadmitted older claim does not block the admitted one", async () => {
    await admin.ok(["label", "namespace", teamB.name, `mail.acme/tenant=acme`]);
    await admin.ok(
      ["apply", "-f", "-"],
      stringify(domain({ namespaceSelector: { matchLabels: { "mail.acme/tenant": "acme" } } })),
    );
    await admin.ok([
      "wait",
      "-n",
      teamB.name,
      "--for=condition=Ready",
      "--timeout=60s",
      "maildevice/ceo-phone",
    ]);
    expect(await readyCondition(admin, "mailaddress", teamA.name, "alice")).toMatchObject({
      reason: "NamespaceNotAllowed",
    });
    expect(await devicesInDb()).toEqual([`${teamB.name}/ceo-phone`]);
  });

  it("admitting a namespace later moves no address: the first admitted claim keeps it", async () => {
    await applyAll(teamB.name, mailbox("bob", "bob"));
    await admin.ok(
      ["apply", "-f", "-"],
      stringify(
        domain({
          namespaces: [teamA.name],
          namespaceSelector: { matchLabels: { "mail.acme/tenant": "acme" } },
        }),
      ),
    );
    await admin.ok([
      "wait",
      "-n",
      teamB.name,
      "--for=condition=Ready",
      "--timeout=60s",
      "maildevice/bob-phone",
    ]);
    // alice@ is claimed in both namespaces now admitted: team-b, admitted first, keeps it, although
    // team-a's claim is older. team-a is told so, and not told who owns it.
    await eventually(async () => {
      const ready = await readyCondition(admin, "mailaddress", teamA.name, "alice");
      expect(ready).toMatchObject({ reason: "AddressConflict" });
      expect(ready?.message).toContain("is owned by another namespace");
      expect(ready?.message).not.toContain(teamB.name);
    });
    expect(await readyCondition(admin, "maildevice", teamB.name, "ceo-phone")).toMatchObject({
      status: "True",
    });
    expect(await devicesInDb()).toEqual([`${teamB.name}/bob-phone`, `${teamB.name}/ceo-phone`].sort());
  });

  it("narrowing its namespaces takes their passwords off the mail server at once, and re-admitting restores the same ones", async () => {
    const bobPassword = (await secretData(admin, teamB.name, "bob-phone-mail-credentials")).password;
    // Narrow: team-b loses its label, so only team-a stays admitted.
    await admin.ok(["label", "namespace", teamB.name, "mail.acme/tenant-"]);
    await eventually(async () => {
      expect(await devicesInDb()).toEqual([]);
      const ready = await readyCondition(admin, "maildevice", teamB.name, "bob-phone");
      expect(ready).toMatchObject({ reason: "NamespaceNotAllowed" });
    });
    // The password is no longer accepted, but its Secret stays for the suspension grace period:
    // a MailDomain edited by mistake or a namespace relabelled destroys nothing.
    expect((await secretData(admin, teamB.name, "bob-phone-mail-credentials")).password).toBe(bobPassword);
    // team-a gets nothing meanwhile: team-b's ownership of alice@ outlives a narrowing too.
    expect(await readyCondition(admin, "mailaddress", teamA.name, "alice")).toMatchObject({
      reason: "AddressConflict",
    });
    const events = await admin.ok([
      "get",
      "events",
      "-n",
      teamB.name,
      "--field-selector",
      "involvedObject.name=bob-phone",
    ]);
    expect(events).toContain("Suspended");
    expect(events).not.toContain("Revoked");

    await admin.ok(["label", "namespace", teamB.name, "mail.acme/tenant=acme"]);
    await admin.ok([
      "wait",
      "-n",
      teamB.name,
      "--for=condition=Ready",
      "--timeout=60s",
      "maildevice/bob-phone",
    ]);
    expect((await secretData(admin, teamB.name, "bob-phone-mail-credentials")).password).toBe(bobPassword);
    const entries = await passdbEntries(admin, passdbNs.name);
    expect(await accepts(entries, `${teamB.name}/bob-phone`, bobPassword!)).toBe(true);
    await eventually(async () =>
      expect(
        await admin.ok([
          "get",
          "events",
          "-n",
          teamB.name,
          "--field-selector",
          "involvedObject.name=bob-phone",
        ]),
      ).toContain("Resumed"),
    );
  });

  it("passes its settings and device policy to its addresses, which may override the settings", async () => {
    const smtp = { host: "smtp.acme.test", port: 587, security: "STARTTLS" };
    const imap = { host: "imap.acme.test", port: 993, security: "SSL/TLS" };
    await admin.ok([
      "apply", "-f", "-",
    ], stringify(domain({ namespaces: [teamA.name], clientSettings: { smtp, imap }, devicePolicy: { passwordLength: 32, allowedProtocols: ["imap", "smtp"] } }))); // prettier-ignore
    await applyAll(
      teamA.name,
      mailbox("carol", "carol", {
        clientSettings: { imap: { host: "imap.carol.test", port: 143, security: "STARTTLS" } },
      }),
    );
    await admin.ok([
      "wait",
      "-n",
      teamA.name,
      "--for=condition=Ready",
      "--timeout=60s",
      "maildevice/carol-phone",
    ]);
    await admin.ok(["delete", "secret", "-n", teamA.name, "carol-phone-mail-credentials"]); // a password made under the policy
    const data = await eventually(async () => {
      const d = await secretData(admin, teamA.name, "carol-phone-mail-credentials");
      expect(d.password).toHaveLength(32);
      return d;
    });
    expect(data).toMatchObject({
      "smtp-host": "smtp.acme.test",
      "smtp-port": "587",
      "imap-host": "imap.carol.test",
      "imap-port": "143",
    });
    expect(data["pop3-host"]).toBeUndefined();
    const entries = await passdbEntries(admin, passdbNs.name);
    expect(entries.find((e) => e.device === `${teamA.name}/carol-phone`)?.protocols).toEqual([
      "imap",
      "smtp",
    ]);

    // A device asking for a protocol the domain forbids gets nothing.
    await applyAll(teamA.name, [
      {
        apiVersion: "mail.devicepass.io/v1alpha1",
        kind: "MailDevice",
        metadata: { name: "carol-pop" },
        spec: { address: "carol", displayName: "POP box", protocols: ["pop3"] },
      },
    ]);
    await eventually(async () => {
      const ready = await readyCondition(admin, "maildevice", teamA.name, "carol-pop");
      expect(ready).toMatchObject({ status: "False", reason: "ProtocolNotAllowed" });
      expect(ready?.message).toContain("does not allow pop3");
    });
  });

  it("reports the addresses in admitted namespaces", async () => {
    await eventually(async () => {
      const status = await admin.json<{ status: { addresses: number } }>(["get", "maildomain", domainName]);
      expect(status.status.addresses).toBe(2); // alice and carol in team-a
    });
    const table = await admin.ok(["get", "maildomain", domainName]);
    expect(table).toMatch(/ADDRESSES\s+READY/);
  });
});

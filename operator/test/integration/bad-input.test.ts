// Bad input gets a clear error at the earliest point: the API server's schema and CEL rules, then
// status conditions (AddressNotFound, SecretConflict, AddressConflict) that name what is wrong.
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { adminKubectl, consistently, eventually } from "../support.ts";
import { passdbEntries, readyCondition, secretData, useOperator } from "../operator-support.ts";

const kubectl = adminKubectl();
/** How long a released address stays with its namespace, short here so a test can wait it out. */
const ownershipGraceMs = 6_000;
const env = useOperator("bad", { namespaces: 2, config: { ownershipGraceMs } });
const ns = {
  get name() {
    return env.namespaces[0]!;
  },
};
const other = {
  get name() {
    return env.namespaces[1]!;
  },
};
const passdbNs = {
  get name() {
    return env.passdbNamespace;
  },
};

const address = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "mail.devicepass.io/v1alpha1",
  kind: "MailAddress",
  metadata: { name },
  spec,
});
const device = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "mail.devicepass.io/v1alpha1",
  kind: "MailDevice",
  metadata: { name },
  spec: { address: "carol", displayName: "A device", ...spec },
});

async function applyFails(namespace: string, object: unknown): Promise<string> {
  const result = await kubectl.run(["apply", "-n", namespace, "-f", "-"], stringify(object));
  expect(result.code, result.stdout).not.toBe(0);
  return result.stderr;
}

describe("kubectl apply refuses invalid objects with a message that names the field", () => {
  it.each([
    [
      "a malformed address",
      address("x1", { address: "not-an-address" }),
      'spec.address: Invalid value: "not-an-address": must be a mail address such as alice@example.com',
    ],
    ["an address with two @", address("x2", { address: "a@b@example.com" }), "spec.address: Invalid value"],
    ["a missing address", address("x3", {}), "spec.address: Required value"],
    [
      "a bad port",
      address("x4", {
        address: "x@example.com",
        clientSettings: { imap: { host: "h", port: 0, security: "SSL/TLS" } },
      }),
      "spec.clientSettings.imap.port: Invalid value: 0",
    ],
    [
      "a bad security",
      address("x5", {
        address: "x@example.com",
        clientSettings: { smtp: { host: "h", port: 25, security: "none" } },
      }),
      'spec.clientSettings.smtp.security: Unsupported value: "none"',
    ],
  ])("MailAddress with %s", async (_what, object, message) => {
    expect(await applyFails(ns.name, object)).toContain(message);
  });

  it.each([
    ["a long displayName", device("d1", { displayName: "x".repeat(65) }), "spec.displayName: Too long"],
    ["an empty displayName", device("d2", { displayName: "" }), "spec.displayName: Invalid value"],
    ["an unknown icon", device("d3", { icon: "fridge" }), 'spec.icon: Unsupported value: "fridge"'],
    [
      "an unknown protocol",
      device("d4", { protocols: ["imap", "ftp"] }),
      'spec.protocols[1]: Unsupported value: "ftp"',
    ],
    [
      "a repeated protocol",
      device("d5", { protocols: ["imap", "imap"] }),
      'spec.protocols[1]: Duplicate value: "imap"',
    ],
    ["no protocols", device("d6", { protocols: [] }), "spec.protocols: Invalid value"],
    ["a user without email", device("d7", { user: { name: "Bob" } }), "spec.user.email: Required value"],
    ["a bad secretName", device("d8", { secretName: "Not_Valid" }), "spec.secretName: Invalid value"],
  ])("MailDevice with %s", async (_what, object, message) => {
    expect(await applyFails(ns.name, object)).toContain(message);
  });

  it("refuses to change an address or a device's address once set", async () => {
    await kubectl.ok(
      ["apply", "-n", ns.name, "-f", "-"],
      stringify(address("immutable", { address: "imm@example.com" })),
    );
    expect(await applyFails(ns.name, address("immutable", { address: "other@example.com" }))).toContain(
      'spec.address: Invalid value: "other@example.com": address is immutable',
    );
    await kubectl.ok(
      ["apply", "-n", ns.name, "-f", "-"],
      stringify(device("moving", { address: "immutable" })),
    );
    expect(await applyFails(ns.name, device("moving", { address: "elsewhere" }))).toContain(
      "address is immutable",
    );
    expect(
      await applyFails(ns.name, device("moving", { address: "immutable", secretName: "new-name" })),
    ).toContain("secretName is immutable");
  });
});

describe("status explains what the API server cannot check", () => {
  it("a device whose address does not exist is AddressNotFound with no credential, and Ready once it appears", async () => {
    await kubectl.ok(
      ["apply", "-n", ns.name, "-f", "-"],
      stringify(device("carol-phone", { address: "carol" })),
    );
    await eventually(async () => {
      const ready = await readyCondition(kubectl, "maildevice", ns.name, "carol-phone");
      expect(ready).toMatchObject({ status: "False", reason: "AddressNotFound" });
      expect(ready?.message).toContain("MailAddress carol does not exist");
    });
    expect(
      (await kubectl.run(["get", "secret", "-n", ns.name, "carol-phone-mail-credentials"])).stderr,
    ).toContain("NotFound");
    const events = await kubectl.ok([
      "get",
      "events",
      "-n",
      ns.name,
      "--field-selector",
      "involvedObject.name=carol-phone",
    ]);
    expect(events).toContain("AddressNotFound");

    await kubectl.ok(
      ["apply", "-n", ns.name, "-f", "-"],
      stringify(address("carol", { address: "Carol@Example.com" })),
    );
    await kubectl.ok([
      "wait",
      "-n",
      ns.name,
      "--for=condition=Ready",
      "--timeout=30s",
      "maildevice/carol-phone",
    ]);
    expect((await secretData(kubectl, ns.name, "carol-phone-mail-credentials")).username).toBe(
      "carol@example.com",
    );
  });

  it("a Secret name taken by a Secret devicepass does not own is left untouched (SecretConflict)", async () => {
    await kubectl.ok(["create", "secret", "generic", "taken", "-n", ns.name, "--from-literal=password=mine"]);
    await kubectl.ok(
      ["apply", "-n", ns.name, "-f", "-"],
      stringify(device("carol-tablet", { secretName: "taken" })),
    );
    await eventually(async () => {
      const ready = await readyCondition(kubectl, "maildevice", ns.name, "carol-tablet");
      expect(ready).toMatchObject({ status: "False", reason: "SecretConflict" });
      expect(ready?.message).toContain("Secret taken exists and is not managed by this MailDevice");
    });
    await consistently(async () => {
      expect(await secretData(kubectl, ns.name, "taken")).toEqual({ password: "mine" });
    }, 1000);
    const entries = await passdbEntries(kubectl, passdbNs.name);
    expect(entries.map((e) => e.device)).not.toContain(`${ns.name}/carol-tablet`);
    // Freeing the name lets the device get its credential.
    await kubectl.ok(["delete", "secret", "taken", "-n", ns.name]);
    await kubectl.ok([
      "wait",
      "-n",
      ns.name,
      "--for=condition=Ready",
      "--timeout=60s",
      "maildevice/carol-tablet",
    ]);
  });

  it("a claim from another namespace issues nothing, not even across the owner's re-creation, and says nothing of the owner", async () => {
    await kubectl.ok(
      ["apply", "-n", other.name, "-f", "-"],
      stringify(address("impostor", { address: "carol@example.com" })),
    );
    await kubectl.ok(
      ["apply", "-n", other.name, "-f", "-"],
      stringify(device("impostor-phone", { address: "impostor" })),
    );
    await eventually(async () => {
      const ready = await readyCondition(kubectl, "mailaddress", other.name, "impostor");
      expect(ready).toMatchObject({ status: "False", reason: "AddressConflict" });
      expect(ready?.message).toContain("is owned by another namespace, which claimed it first");
      // Status never tells one tenant about another.
      expect(ready?.message).not.toContain(ns.name);
      expect(await readyCondition(kubectl, "maildevice", other.name, "impostor-phone")).toMatchObject({
        reason: "AddressConflict",
      });
    });
    expect(await readyCondition(kubectl, "mailaddress", ns.name, "carol")).toMatchObject({ status: "True" });
    let entries = await passdbEntries(kubectl, passdbNs.name);
    expect(entries.map((e) => e.device)).not.toContain(`${other.name}/impostor-phone`);

    // A GitOps replace of the owner's MailAddress (delete, then create again) keeps it the owner's.
    const carol = stringify(address("carol", { address: "carol@example.com" }));
    await kubectl.ok(["delete", "-n", ns.name, "mailaddress", "carol"]);
    await kubectl.ok(["apply", "-n", ns.name, "-f", "-"], carol);
    await kubectl.ok(["wait", "-n", ns.name, "--for=condition=Ready", "--timeout=60s", "mailaddress/carol"]);
    await consistently(async () => {
      expect(await readyCondition(kubectl, "maildevice", other.name, "impostor-phone")).toMatchObject({
        reason: "AddressConflict",
      });
    }, ownershipGraceMs + 1000);
    entries = await passdbEntries(kubectl, passdbNs.name);
    expect(entries.map((e) => e.device)).not.toContain(`${other.name}/impostor-phone`);

    // Deleted for good: the address is free only once the ownership grace period is over.
    await kubectl.ok(["delete", "-n", ns.name, "mailaddress", "carol"]);
    const deletedAt = Date.now();
    await kubectl.ok([
      "wait",
      "-n",
      other.name,
      "--for=condition=Ready",
      "--timeout=60s",
      "maildevice/impostor-phone",
    ]);
    expect(Date.now() - deletedAt).toBeGreaterThanOrEqual(ownershipGraceMs - 500);
    entries = await passdbEntries(kubectl, passdbNs.name);
    expect(entries.filter((e) => e.address === "carol@example.com").map((e) => e.device)).toEqual([
      `${other.name}/impostor-phone`,
    ]);
  });
});

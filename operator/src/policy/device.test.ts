// The device policy chain as one table: standing × Secret × rotate values × database → decision.
import { describe, expect, it } from "vitest";
import { addressStanding, type AddressStanding } from "./address-claims.ts";
import { decideDevice, publishableEntry, secretState, type DeviceInput } from "./device.ts";
import { address, device, digest, domain, ownedSecret, record } from "./fixtures.test-support.ts";
import { encodeData, type SecretObject } from "./secret.ts";

const alice = address("alice", "Alice@Example.com");
const issuing = addressStanding(alice, [alice], () => true);
const withRotate = (value: string) => {
  const a = address("alice", "alice@example.com", { rotate: value });
  return addressStanding(a, [a], () => true);
};
const notFound: AddressStanding = { state: "NotFound" };
const foreign: SecretObject = {
  metadata: { name: "phone-mail-credentials", uid: "x" },
  data: encodeData({ password: "mine" }),
};

interface Row {
  name: string;
  device?: ReturnType<typeof device>;
  standing?: AddressStanding;
  secret?: (d: ReturnType<typeof device>) => SecretObject | undefined;
  published?: (d: ReturnType<typeof device>) => string | undefined;
  action: string;
  reason?: string;
  ready: string;
}

const current = record("pw1", { rotatedFor: "r1", addressRotatedFor: "a1" });
const table: Row[] = [
  { name: "new device", action: "issue", reason: "Issued", ready: "Publishing" },
  {
    name: "Secret deleted after a password was issued",
    device: device("phone", { generatedAt: "2026-01-01T00:00:00Z" }),
    action: "issue",
    reason: "Reissued",
    ready: "Publishing",
  },
  {
    name: "written but not yet in the database",
    secret: (d) => ownedSecret(d, current),
    action: "refresh",
    ready: "Publishing",
  },
  {
    name: "in the database",
    secret: (d) => ownedSecret(d, current),
    published: () => current.hash,
    action: "refresh",
    ready: "CredentialsReady",
  },
  {
    name: "database holds an older hash",
    secret: (d) => ownedSecret(d, current),
    published: () => "{ARGON2ID}old",
    action: "refresh",
    ready: "Publishing",
  },
  {
    name: "device rotate value changed",
    device: device("phone", { rotate: "r2" }),
    secret: (d) => ownedSecret(d, current),
    published: () => current.hash,
    action: "issue",
    reason: "Rotated",
    ready: "Publishing",
  },
  {
    name: "device rotate value already handled",
    device: device("phone", { rotate: "r1" }),
    secret: (d) => ownedSecret(d, current),
    published: () => current.hash,
    action: "refresh",
    ready: "CredentialsReady",
  },
  {
    name: "address rotate value changed",
    standing: withRotate("a2"),
    secret: (d) => ownedSecret(d, current),
    published: () => current.hash,
    action: "issue",
    reason: "Rotated",
    ready: "Publishing",
  },
  {
    name: "address rotate value already handled",
    standing: withRotate("a1"),
    secret: (d) => ownedSecret(d, current),
    published: () => current.hash,
    action: "refresh",
    ready: "CredentialsReady",
  },
  {
    name: "password edited by hand",
    secret: (d) => {
      const s = ownedSecret(d, current);
      return { ...s, data: { ...s.data, password: Buffer.from("hand-made").toString("base64") } };
    },
    published: () => current.hash,
    action: "issue",
    reason: "PasswordReplaced",
    ready: "Publishing",
  },
  {
    name: "someone else's Secret of that name",
    secret: () => foreign,
    action: "none",
    ready: "SecretConflict",
  },
  {
    name: "address missing, nothing issued",
    standing: notFound,
    action: "none",
    ready: "AddressNotFound",
  },
  {
    name: "address missing, credential to revoke",
    standing: notFound,
    secret: (d) => ownedSecret(d, current),
    action: "revoke",
    ready: "AddressNotFound",
  },
  {
    name: "address missing, hash still published",
    standing: notFound,
    published: () => current.hash,
    action: "revoke",
    ready: "AddressNotFound",
  },
  {
    name: "address being deleted",
    standing: addressStanding(address("alice", "alice@example.com", { deleting: true }), [], () => true),
    secret: (d) => ownedSecret(d, current),
    action: "revoke",
    ready: "AddressDeleting",
  },
  {
    name: "address claimed by an older one elsewhere",
    standing: addressStanding(
      alice,
      [alice, address("old", "alice@example.com", { namespace: "other", created: "2025-01-01T00:00:00Z" })],
      () => true,
    ),
    secret: (d) => ownedSecret(d, current),
    action: "revoke",
    ready: "AddressConflict",
  },
  {
    name: "device being deleted",
    device: device("phone", { deleting: true }),
    secret: (d) => ownedSecret(d, current),
    published: () => current.hash,
    action: "revoke",
    ready: "Deleting",
  },
  {
    name: "protocol the domain forbids",
    device: device("phone", { protocols: ["pop3"] }),
    standing: {
      ...issuing,
      domain: domain("example.com", { devicePolicy: { allowedProtocols: ["imap"] } }),
    } as AddressStanding,
    secret: (d) => ownedSecret(d, current),
    action: "revoke",
    ready: "ProtocolNotAllowed",
  },
];

describe("decideDevice", () => {
  it.each(table)("$name → $action, $ready", (row) => {
    const d = row.device ?? device("phone");
    const input: DeviceInput = {
      device: d,
      standing: row.standing ?? issuing,
      secret: secretState(row.secret?.(d), d),
      publishedHash: row.published?.(d),
      digest,
    };
    const decision = decideDevice(input);
    expect(decision.action.type).toBe(row.action);
    if (row.reason) expect(decision.action).toMatchObject({ reason: row.reason });
    expect(decision.ready.reason).toBe(row.ready);
    expect(decision.ready.status).toBe(row.ready === "CredentialsReady" ? "True" : "False");
    expect(decision.ready.message).toMatch(/\.$/); // full sentences
  });
});

describe("publishableEntry", () => {
  const d = device("phone", { protocols: ["smtp"] });
  it("lists a live device of an issuing address whose Secret holds the password its digest names", () => {
    expect(publishableEntry(d, issuing, ownedSecret(d, current), digest)).toEqual({
      address: "alice@example.com",
      device: "ns/phone",
      protocols: ["smtp"],
      hash: current.hash,
    });
  });

  it.each([
    [
      "a device being deleted",
      device("phone", { deleting: true }),
      issuing,
      (x: ReturnType<typeof device>) => ownedSecret(x, current),
    ],
    [
      "an address that does not issue",
      d,
      notFound,
      (x: ReturnType<typeof device>) => ownedSecret(x, current),
    ],
    ["no Secret", d, issuing, () => undefined],
    ["someone else's Secret", d, issuing, () => foreign],
    [
      "a hand-edited password",
      d,
      issuing,
      (x: ReturnType<typeof device>) => {
        const s = ownedSecret(x, current);
        return { ...s, data: { ...s.data, password: Buffer.from("edited").toString("base64") } };
      },
    ],
  ])("leaves out %s", (_what, dev, standing, secret) => {
    expect(publishableEntry(dev, standing, secret(dev), digest)).toBeUndefined();
  });
});

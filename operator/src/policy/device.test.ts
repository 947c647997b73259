// The device policy chain as one table: standing × Secret (read back through its seal) × rotate
// values × limits × database × the clock → decision. No API server, a fixed clock.
import { describe, expect, it } from "vitest";
import { encodeData, type SecretObject } from "../kube/objects.ts";
import { decideDevice, publishableEntry, secretState, type DeviceInput } from "./device.ts";
import {
  address,
  credentialOf,
  device,
  domain,
  fakeHash,
  ownedSecret,
  record,
  seal,
} from "./fixtures.test-support.ts";
import { addressStanding, type AddressStanding, type OwnershipRecord } from "./ownership.ts";
import { desiredSecret } from "./secret.ts";

const alice = address("alice", "Alice@Example.com");
const owner: OwnershipRecord = {
  address: "alice@example.com",
  namespace: "ns",
  since: "2026-01-01T00:00:00Z",
};
const standingOf = (a = alice, claims = [a], own: OwnershipRecord | undefined = owner): AddressStanding =>
  addressStanding(a, claims, own, () => true);
const issuing = standingOf();
const withRotate = (value: string) => standingOf(address("alice", "alice@example.com", { rotate: value }));
const notFound: AddressStanding = { state: "NotFound" };
const foreign: SecretObject = {
  metadata: { name: "phone-mail-credentials", uid: "x" },
  data: encodeData({ password: "mine" }),
};
const now = new Date("2026-01-10T00:00:00Z");
const timing = { minRotationIntervalMs: 10_000, suspensionGraceMs: 3_600_000 };
type Device = ReturnType<typeof device>;

interface Row {
  name: string;
  device?: Device;
  standing?: AddressStanding;
  secret?: (d: Device) => SecretObject | undefined;
  published?: (d: Device) => string | undefined;
  overLimit?: boolean;
  databaseFull?: boolean;
  action: string;
  reason?: string;
  ready: string;
  suspendedAt?: string;
  requeue?: boolean;
}

const current = record("pw1", { rotatedFor: "r1", addressRotatedFor: "a1" });
const editedPassword = (d: Device) => {
  const s = ownedSecret(d, current);
  return { ...s, data: { ...s.data, password: Buffer.from("hand-made").toString("base64") } };
};
/** The tenant's own consistent forgery: password, digest and hash changed together, no seal. */
const forged = (d: Device) => {
  const mine = record("chosen-by-tenant");
  const s = ownedSecret(d, current);
  const f = ownedSecret(d, mine);
  return {
    ...s,
    data: f.data,
    metadata: {
      ...s.metadata,
      annotations: {
        ...f.metadata.annotations,
        "mail.devicepass.io/seal": s.metadata.annotations!["mail.devicepass.io/seal"]!,
      },
    },
  };
};
const injectedHash = (d: Device) => {
  const s = ownedSecret(d, current);
  const annotations = {
    ...s.metadata.annotations,
    "mail.devicepass.io/password-hash": `${current.hash}\nbob@example.com\tother/x\timap\t{PLAIN}pw`,
  };
  return { ...s, metadata: { ...s.metadata, annotations } };
};
const cheapHash = (d: Device) => {
  const r = { ...current, hash: fakeHash("pw1", { memoryCost: 8, timeCost: 1, parallelism: 1 }) };
  return ownedSecret(d, r);
};

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
    name: "Secret deleted seconds after the last password: waits out the rotation interval",
    device: device("phone", { generatedAt: "2026-01-09T23:59:55Z" }),
    action: "none",
    ready: "Publishing",
    requeue: true,
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
    name: "no room in the database",
    secret: (d) => ownedSecret(d, current),
    databaseFull: true,
    action: "refresh",
    ready: "DatabaseFull",
  },
  {
    name: "database holds an older hash",
    secret: (d) => ownedSecret(d, current),
    published: () => fakeHash("old"),
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
    name: "device rotated again within the interval: the current password stays until it is due",
    device: device("phone", { rotate: "r2", generatedAt: "2026-01-09T23:59:58Z" }),
    secret: (d) => ownedSecret(d, current),
    published: () => current.hash,
    action: "refresh",
    ready: "CredentialsReady",
    requeue: true,
  },
  {
    name: "rotated again right after a rotation whose status is not written yet: the sealed record's time counts",
    device: device("phone", { rotate: "r3", generatedAt: "2026-01-01T00:00:00Z" }),
    secret: (d) => ownedSecret(d, { ...current, generatedAt: "2026-01-09T23:59:58Z" }),
    published: () => current.hash,
    action: "refresh",
    ready: "CredentialsReady",
    requeue: true,
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
    secret: editedPassword,
    published: () => current.hash,
    action: "issue",
    reason: "PasswordReplaced",
    ready: "Publishing",
  },
  {
    name: "a consistent forgery (password, digest and hash changed together)",
    secret: forged,
    published: () => current.hash,
    action: "issue",
    reason: "CredentialTampered",
    ready: "Publishing",
  },
  {
    name: "a hash annotation with an injected line",
    secret: injectedHash,
    published: () => current.hash,
    action: "issue",
    reason: "CredentialTampered",
    ready: "Publishing",
  },
  {
    name: "a sealed hash of other argon2id parameters",
    secret: cheapHash,
    published: () => current.hash,
    action: "issue",
    reason: "Reissued",
    ready: "Publishing",
  },
  {
    name: "someone else's Secret of that name",
    secret: () => foreign,
    action: "none",
    ready: "SecretConflict",
  },
  { name: "address missing, nothing issued", standing: notFound, action: "none", ready: "AddressNotFound" },
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
    standing: standingOf(address("alice", "alice@example.com", { deleting: true }), []),
    secret: (d) => ownedSecret(d, current),
    action: "revoke",
    ready: "AddressDeleting",
  },
  {
    name: "address owned by another namespace: suspended, the Secret kept",
    standing: standingOf(alice, [alice], { ...owner, namespace: "tenant-b" }),
    secret: (d) => ownedSecret(d, current),
    action: "none",
    ready: "AddressConflict",
    suspendedAt: "2026-01-10T00:00:00Z",
    requeue: true,
  },
  {
    name: "namespace no longer admitted: suspended since earlier, still in its grace period",
    device: device("phone", { suspendedAt: "2026-01-09T23:30:00Z" }),
    standing: { state: "NamespaceNotAllowed", address: alice, domain: domain("example.com") },
    secret: (d) => ownedSecret(d, current),
    published: () => current.hash,
    action: "none",
    ready: "NamespaceNotAllowed",
    suspendedAt: "2026-01-09T23:30:00Z",
    requeue: true,
  },
  {
    name: "namespace no longer admitted for longer than the grace period: revoked",
    device: device("phone", { suspendedAt: "2026-01-09T22:00:00Z" }),
    standing: { state: "NamespaceNotAllowed", address: alice, domain: domain("example.com") },
    secret: (d) => ownedSecret(d, current),
    action: "revoke",
    ready: "NamespaceNotAllowed",
    suspendedAt: "2026-01-09T22:00:00Z",
  },
  {
    name: "admitted again within the grace period: the same password, resumed",
    device: device("phone", { suspendedAt: "2026-01-09T23:30:00Z" }),
    secret: (d) => ownedSecret(d, current),
    action: "refresh",
    ready: "Publishing",
  },
  {
    name: "beyond the address's device limit",
    overLimit: true,
    action: "none",
    ready: "DeviceLimitExceeded",
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
    action: "none",
    ready: "ProtocolNotAllowed",
    suspendedAt: "2026-01-10T00:00:00Z",
    requeue: true,
  },
];

describe("decideDevice", () => {
  it.each(table)("$name → $action, $ready", (row) => {
    const d = row.device ?? device("phone");
    const standing = row.standing ?? issuing;
    const secret = secretState(row.secret?.(d), d);
    const input: DeviceInput = {
      device: d,
      standing,
      secret,
      credential:
        secret.kind === "owned" && standing.state === "Issuing" ? credentialOf(d, secret.secret) : undefined,
      publishedHash: row.published?.(d),
      overLimit: row.overLimit ? { limit: 20 } : undefined,
      databaseFull: row.databaseFull ?? false,
      now,
      timing,
    };
    const decision = decideDevice(input);
    expect(decision.action.type).toBe(row.action);
    if (row.reason) expect(decision.action).toMatchObject({ reason: row.reason });
    expect(decision.ready.reason).toBe(row.ready);
    expect(decision.ready.status).toBe(row.ready === "CredentialsReady" ? "True" : "False");
    expect(decision.ready.message).toMatch(/\.$/); // full sentences
    expect(decision.suspendedAt).toBe(row.suspendedAt);
    expect(decision.requeueAfterMs !== undefined).toBe(row.requeue ?? false);
    // Never another tenant's namespace in a message.
    expect(decision.ready.message).not.toContain("tenant-b");
  });
});

describe("publishableEntry", () => {
  const d = device("phone", { protocols: ["smtp"] });
  const entryOf = (
    dev: Device,
    standing: AddressStanding,
    secret: SecretObject | undefined,
    overLimit = false,
  ) => {
    const state = secretState(secret, dev);
    const credential =
      state.kind === "owned" && standing.state === "Issuing" ? credentialOf(dev, state.secret) : undefined;
    return publishableEntry({ device: dev, standing, secret: state, credential, overLimit });
  };

  it("lists a live device of an issuing address whose Secret holds a sealed record", () => {
    expect(entryOf(d, issuing, ownedSecret(d, current))).toEqual({
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
      (x: Device) => ownedSecret(x, current),
    ],
    ["an address that does not issue", d, notFound, (x: Device) => ownedSecret(x, current)],
    ["no Secret", d, issuing, () => undefined],
    ["someone else's Secret", d, issuing, () => foreign],
    ["a hand-edited password", d, issuing, editedPassword],
    ["a consistent forgery", d, issuing, forged],
    ["an injected hash", d, issuing, injectedHash],
    ["a hash of other parameters", d, issuing, cheapHash],
    [
      "a Secret sealed for another device",
      d,
      issuing,
      (x: Device) => {
        const other = desiredSecret({
          device: device("laptop"),
          secretName: `${x.metadata.name}-mail-credentials`,
          mailAddress: "alice@example.com",
          settings: {},
          record: current,
          seal,
        });
        return {
          ...ownedSecret(x, current),
          metadata: { ...ownedSecret(x, current).metadata, annotations: other.metadata.annotations },
        };
      },
    ],
  ])("leaves out %s", (_what, dev, standing, secret) => {
    expect(entryOf(dev, standing, secret(dev))).toBeUndefined();
  });

  it("leaves out a device beyond its address's limit", () => {
    expect(entryOf(d, issuing, ownedSecret(d, current), true)).toBeUndefined();
  });
});

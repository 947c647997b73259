// Invitation records: built as the operator builds them, read back as the portal reads them,
// sealed so that nothing but the operator's key makes a valid one, redeemed once.
import { describe, expect, it } from "vitest";
import { createdByAnnotation, invitationNames, labels } from "../api/names.ts";
import type { MailDevice } from "../api/schemas.ts";
import {
  desiredInvitationRecord,
  hmacInvitationSealer,
  invitationStatus,
  parseInvitationRecord,
  redeemedRecord,
  revokedRecord,
  verifyInvitationSeal,
  withoutSetup,
  type ConfigMapObject,
} from "./record.ts";
import { newInvitationToken, tokenHash } from "./token.ts";

const key = Buffer.alloc(32, 7);
const device: MailDevice = {
  apiVersion: "mail.devicepass.io/v1alpha1",
  kind: "MailDevice",
  metadata: {
    name: "alice-iphone",
    namespace: "mail",
    uid: "0b5c6a8e-2f6f-4d7e-9e57-6d1c3c3b9a11",
    resourceVersion: "1",
    creationTimestamp: "2026-12-01T10:00:00Z",
    annotations: { [createdByAnnotation]: "admin@example.com" },
  },
  spec: { address: "alice", displayName: "Alice's iPhone", icon: "phone", protocols: ["imap", "smtp"] },
};
const settings = {
  imap: { host: "imap.example.com", port: 993, security: "SSL/TLS" as const },
  smtp: { host: "smtp.example.com", port: 587, security: "STARTTLS" as const },
};

function build(token = newInvitationToken(), expiresAt = new Date("2026-12-31T00:00:00Z")): ConfigMapObject {
  return desiredInvitationRecord({
    namespace: "devicepass-system",
    tokenHash: tokenHash(token),
    device,
    address: "alice@example.com",
    expiresAt,
    passwordLength: 24,
    argon2: { memoryCost: 19456, timeCost: 2, parallelism: 1 },
    clientSettings: settings,
    language: "es",
    seal: hmacInvitationSealer(key),
  });
}

/** What the API server returns: the object with its metadata filled in. */
function stored(configMap: ConfigMapObject): ConfigMapObject {
  return { ...configMap, metadata: { ...configMap.metadata, uid: "u", resourceVersion: "42" } };
}

const hash =
  "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";

describe("invitation records", () => {
  it("are pending, named after the token's hash, labelled, and carry what the page shows", () => {
    const token = newInvitationToken();
    const record = parseInvitationRecord(stored(build(token)));
    expect(record.configMap.metadata.name).toBe(`${invitationNames.recordPrefix}${tokenHash(token)}`);
    expect(record.configMap.metadata.labels).toEqual({
      [labels.managedBy]: "devicepass",
      [labels.component]: "invitation",
      [invitationNames.deviceUidLabel]: device.metadata.uid,
    });
    expect(record.data.state).toBe("pending");
    expect(record.invitation).toMatchObject({
      device: { namespace: "mail", name: "alice-iphone", uid: device.metadata.uid },
      displayName: "Alice's iPhone",
      icon: "phone",
      address: "alice@example.com",
      invitedBy: "admin@example.com",
      expiresAt: "2026-12-31T00:00:00.000Z",
      protocols: ["imap", "smtp"],
      language: "es",
      clientSettings: settings,
    });
    // Nothing in the record opens the link: no token, only its hash as the name.
    expect(JSON.stringify(record.configMap)).not.toContain(token);
  });

  it("are sealed by the operator's key: a changed invitation, name or key fails", () => {
    const record = parseInvitationRecord(stored(build()));
    expect(verifyInvitationSeal(record, key)).toBe(true);
    expect(verifyInvitationSeal(record, Buffer.alloc(32, 8))).toBe(false);
    const edited = record.data.invitation.replace("alice@example.com", "mallory@example.com");
    const tampered = parseInvitationRecord(
      stored({ ...record.configMap, data: { ...record.configMap.data, invitation: edited } }),
    );
    expect(verifyInvitationSeal(tampered, key)).toBe(false);
    const moved = parseInvitationRecord(
      stored({
        ...record.configMap,
        metadata: { ...record.configMap.metadata, name: `${invitationNames.recordPrefix}${"0".repeat(64)}` },
      }),
    );
    expect(verifyInvitationSeal(moved, key)).toBe(false);
  });

  it("redeem once: pending → redeemed with the hash, the seal carried through untouched", () => {
    const record = parseInvitationRecord(stored(build()));
    const redeemed = redeemedRecord(record, {
      passwordHash: hash,
      redeemedAt: new Date("2026-12-02T10:00:00Z"),
      setup: { ciphertext: "v1.a.b.c", expiresAt: new Date("2026-12-02T10:10:00Z") },
    });
    expect(redeemed.metadata.resourceVersion).toBe("42"); // the precondition of the PUT
    const back = parseInvitationRecord(redeemed);
    expect(back.data).toMatchObject({
      state: "redeemed",
      passwordHash: hash,
      redeemedAt: "2026-12-02T10:00:00.000Z",
    });
    expect(back.data.seal).toBe(record.data.seal);
    expect(back.data.invitation).toBe(record.data.invitation);
    expect(verifyInvitationSeal(back, key)).toBe(true);
    expect(() => redeemedRecord(back, { passwordHash: hash, redeemedAt: new Date() })).toThrow(
      /only a pending/,
    );
    expect(() => redeemedRecord(record, { passwordHash: "plaintext", redeemedAt: new Date() })).toThrow(
      /argon2id/,
    );
    expect(parseInvitationRecord(withoutSetup(back)).data.setupCiphertext).toBeUndefined();
    const revoked = parseInvitationRecord(revokedRecord(back));
    expect(revoked.data).toEqual({
      invitation: record.data.invitation,
      seal: record.data.seal,
      state: "revoked",
    });
  });

  it("expire at expiresAt; redeemed and revoked stay so", () => {
    const record = parseInvitationRecord(stored(build(undefined, new Date("2026-12-02T00:00:00Z"))));
    expect(invitationStatus(record, new Date("2026-12-01T23:59:59Z"))).toBe("pending");
    expect(invitationStatus(record, new Date("2026-12-02T00:00:00Z"))).toBe("expired");
    const redeemed = parseInvitationRecord(
      redeemedRecord(record, { passwordHash: hash, redeemedAt: new Date() }),
    );
    expect(invitationStatus(redeemed, new Date("2030-01-01T00:00:00Z"))).toBe("redeemed");
  });

  it("refuse what the operator would never write", () => {
    const good = stored(build());
    const withData = (data: Record<string, string>) => stored({ ...good, data: { ...good.data, ...data } });
    expect(() => parseInvitationRecord(withData({ state: "redeemed" }))).toThrow(/passwordHash/);
    expect(() => parseInvitationRecord(withData({ state: "pending", passwordHash: hash }))).toThrow();
    expect(() =>
      parseInvitationRecord(
        withData({ state: "redeemed", passwordHash: "secret", redeemedAt: "2026-12-01T00:00:00Z" }),
      ),
    ).toThrow();
    expect(() => parseInvitationRecord(withData({ extra: "x" }))).toThrow();
    expect(() => parseInvitationRecord(withData({ invitation: "{not json" }))).toThrow(/JSON/);
    const huge = JSON.parse(good.data!.invitation!) as Record<string, unknown>;
    huge.argon2 = { memoryCost: 4 * 1024 * 1024, timeCost: 2, parallelism: 1 };
    expect(() => parseInvitationRecord(withData({ invitation: JSON.stringify(huge) }))).toThrow(/memoryCost/);
    expect(() =>
      parseInvitationRecord(stored({ ...good, metadata: { ...good.metadata, labels: {} } })),
    ).toThrow(/not an invitation/);
  });

  it("leave out who invited when the device has no created-by annotation", () => {
    const anonymous = { ...device, metadata: { ...device.metadata, annotations: {} } };
    const configMap = desiredInvitationRecord({
      namespace: "ns",
      tokenHash: tokenHash(newInvitationToken()),
      device: anonymous,
      address: "alice@example.com",
      expiresAt: new Date("2026-12-31T00:00:00Z"),
      passwordLength: 24,
      argon2: { memoryCost: 19456, timeCost: 2, parallelism: 1 },
      clientSettings: {},
      seal: hmacInvitationSealer(key),
    });
    const record = parseInvitationRecord(stored(configMap));
    expect(record.invitation.invitedBy).toBeUndefined();
    expect(record.invitation.language).toBeUndefined();
  });
});

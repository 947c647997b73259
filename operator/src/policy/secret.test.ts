import { describe, expect, it } from "vitest";
import { decodeData } from "../kube/objects.ts";
import { credentialOf, device, ownedSecret, record, seal } from "./fixtures.test-support.ts";
import {
  clientSettingsData,
  desiredSecret,
  isOwnedBy,
  labelIfValid,
  readPasswordRecord,
  secretMatches,
} from "./secret.ts";

const d = device("phone");
const r = record("pw", { rotatedFor: "r1", rotationCount: 2 });

describe("desiredSecret", () => {
  const secret = desiredSecret({
    device: d,
    secretName: "phone-mail-credentials",
    mailAddress: "alice@example.com",
    settings: { smtp: { host: "smtp.example.com", port: 587, security: "STARTTLS" } },
    record: r,
    seal,
  });

  it("is a basic-auth Secret owned by the device, with the documented keys and labels", () => {
    expect(secret.type).toBe("kubernetes.io/basic-auth");
    expect(decodeData(secret)).toEqual({
      username: "alice@example.com",
      password: "pw",
      "smtp-host": "smtp.example.com",
      "smtp-port": "587",
      "smtp-security": "STARTTLS",
    });
    expect(secret.metadata.labels).toEqual({
      "app.kubernetes.io/managed-by": "devicepass",
      "app.kubernetes.io/component": "credentials",
      "mail.devicepass.io/address": "alice",
      "mail.devicepass.io/device": "phone",
    });
    expect(secret.metadata.ownerReferences).toEqual([
      {
        apiVersion: "mail.devicepass.io/v1alpha1",
        kind: "MailDevice",
        name: "phone",
        uid: "uid-phone",
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(isOwnedBy(secret, d)).toBe(true);
    expect(isOwnedBy(secret, { ...d, metadata: { ...d.metadata, uid: "other" } })).toBe(false);
  });

  it("records the password's hash, digest and handled rotate values, read back unchanged", () => {
    expect(readPasswordRecord(secret)).toEqual({
      ...r,
      username: "alice@example.com",
      addressRotatedFor: undefined,
    });
  });

  it("is sealed: read back as valid, and as tampered once any recorded field changes", () => {
    expect(credentialOf(d, secret)).toEqual({ kind: "valid", record: r });
    for (const key of ["password-hash", "rotation-count", "generated-at", "rotated-for"]) {
      const annotations = { ...secret.metadata.annotations, [`mail.devicepass.io/${key}`]: "changed" };
      const edited = { ...secret, metadata: { ...secret.metadata, annotations } };
      expect(credentialOf(d, edited).kind, key).toBe("tampered");
    }
    const noSeal = {
      ...secret,
      metadata: {
        ...secret.metadata,
        annotations: { ...secret.metadata.annotations, "mail.devicepass.io/seal": "" },
      },
    };
    expect(credentialOf(d, noSeal).kind).toBe("tampered");
  });

  it("is bound to its device, its Secret name and its mail address", () => {
    const otherDevice = { ...d, metadata: { ...d.metadata, uid: "uid-other" } };
    expect(credentialOf(otherDevice, secret).kind).toBe("tampered");
    expect(credentialOf(d, { ...secret, metadata: { ...secret.metadata, name: "renamed" } }).kind).toBe(
      "tampered",
    );
    expect(credentialOf(d, secret, "bob@example.com")).toEqual({ kind: "outdated", why: "address" });
  });
});

describe("secretMatches", () => {
  const current = ownedSecret(d, r);
  const desired = ownedSecret(d, r);
  it("accepts additions by others: labels, annotations, keys of their own", () => {
    const decorated = {
      ...current,
      metadata: {
        ...current.metadata,
        labels: { ...current.metadata.labels, team: "x" },
        annotations: { ...current.metadata.annotations, note: "y" },
      },
      data: { ...current.data, extra: "eA==" },
    };
    expect(secretMatches(decorated, desired)).toBe(true);
  });

  it("wants a rewrite when one of its own fields differs or a key of its own is no longer wanted", () => {
    expect(secretMatches({ ...current, data: { ...current.data, username: "eA==" } }, desired)).toBe(false);
    expect(secretMatches({ ...current, data: { ...current.data, "imap-host": "eA==" } }, desired)).toBe(
      false,
    );
    expect(secretMatches({ ...current, metadata: { ...current.metadata, labels: {} } }, desired)).toBe(false);
    expect(secretMatches({ ...current, type: "Opaque" }, desired)).toBe(false);
  });
});

describe("helpers", () => {
  it("writes settings as protocol-host/port/security keys", () => {
    expect(clientSettingsData({ imap: { host: "h", port: 993, security: "SSL/TLS" } })).toEqual({
      "imap-host": "h",
      "imap-port": "993",
      "imap-security": "SSL/TLS",
    });
  });

  it("leaves out label values Kubernetes would refuse", () => {
    expect(labelIfValid("k", "alice")).toEqual({ k: "alice" });
    expect(labelIfValid("k", "a".repeat(64))).toEqual({});
  });
});

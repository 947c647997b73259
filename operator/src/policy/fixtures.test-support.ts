// Builders of API objects for the policy unit tests: no API server, fixed clock values.
import { createHash } from "node:crypto";
import type { MailAddress, MailDevice, MailDomain } from "../api/schemas.ts";
import { SealKey } from "../credentials/seal.ts";
import type { SecretObject } from "../kube/objects.ts";
import { checkCredential, desiredSecret, type CredentialCheck, type PasswordRecord } from "./secret.ts";

export const digest = (password: string) => createHash("sha256").update(password).digest("hex");
/** The operator's seal key in these tests. */
export const seal = new SealKey(Buffer.alloc(32, 1));
export const argon2 = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

/** A hash of the configured shape (not a real argon2id of the password: policy tests need no hashing). */
export function fakeHash(password: string, params = argon2): string {
  const b64 = (text: string, n: number) =>
    createHash("sha256").update(text).digest("base64").replace(/=/g, "").slice(0, n);
  return `{ARGON2ID}$argon2id$v=19$m=${params.memoryCost},t=${params.timeCost},p=${params.parallelism}$${b64(`salt${password}`, 22)}$${b64(password, 43)}`;
}

export function address(
  name: string,
  mail: string,
  options: { namespace?: string; created?: string; deleting?: boolean; rotate?: string } = {},
): MailAddress {
  return {
    apiVersion: "mail.devicepass.io/v1alpha1",
    kind: "MailAddress",
    metadata: {
      name,
      namespace: options.namespace ?? "ns",
      uid: `uid-${options.namespace ?? "ns"}-${name}`,
      resourceVersion: "1",
      creationTimestamp: options.created ?? "2026-01-01T00:00:00Z",
      ...(options.deleting ? { deletionTimestamp: "2026-01-02T00:00:00Z" } : {}),
      ...(options.rotate !== undefined
        ? { annotations: { "mail.devicepass.io/rotate": options.rotate } }
        : {}),
    },
    spec: { address: mail },
  };
}

export function device(
  name: string,
  options: {
    rotate?: string;
    deleting?: boolean;
    protocols?: MailDevice["spec"]["protocols"];
    generatedAt?: string;
    suspendedAt?: string;
    created?: string;
  } = {},
): MailDevice {
  return {
    apiVersion: "mail.devicepass.io/v1alpha1",
    kind: "MailDevice",
    metadata: {
      name,
      namespace: "ns",
      uid: `uid-${name}`,
      resourceVersion: "1",
      generation: 1,
      creationTimestamp: options.created ?? "2026-01-01T00:00:00Z",
      ...(options.deleting ? { deletionTimestamp: "2026-01-02T00:00:00Z" } : {}),
      ...(options.rotate !== undefined
        ? { annotations: { "mail.devicepass.io/rotate": options.rotate } }
        : {}),
    },
    spec: {
      address: "alice",
      displayName: name,
      icon: "other",
      ...(options.protocols ? { protocols: options.protocols } : {}),
    },
    ...(options.generatedAt || options.suspendedAt
      ? {
          status: {
            ...(options.generatedAt ? { passwordGeneratedAt: options.generatedAt } : {}),
            ...(options.suspendedAt ? { suspendedAt: options.suspendedAt } : {}),
          },
        }
      : {}),
  };
}

export function domain(name: string, spec: MailDomain["spec"] = {}): MailDomain {
  return {
    apiVersion: "mail.devicepass.io/v1alpha1",
    kind: "MailDomain",
    metadata: { name, uid: `uid-${name}`, resourceVersion: "1", creationTimestamp: "2026-01-01T00:00:00Z" },
    spec,
  };
}

export function record(password: string, extra: Partial<PasswordRecord> = {}): PasswordRecord {
  return {
    password,
    hash: fakeHash(password),
    digest: digest(password),
    generatedAt: "2026-01-01T00:00:00Z",
    rotationCount: 0,
    ...extra,
  };
}

/** The Secret devicepass would have written for `d` with `r`, as the API server returns it. */
export function ownedSecret(d: MailDevice, r: PasswordRecord, mail = "alice@example.com"): SecretObject {
  const secret = desiredSecret({
    device: d,
    secretName: `${d.metadata.name}-mail-credentials`,
    mailAddress: mail,
    settings: {},
    record: r,
    seal,
  });
  return { ...secret, metadata: { ...secret.metadata, uid: "secret-uid", resourceVersion: "7" } };
}

/** What the controller's gather makes of a Secret of ours. */
export function credentialOf(
  d: MailDevice,
  secret: SecretObject,
  mail = "alice@example.com",
): CredentialCheck {
  return checkCredential(secret, d, mail, { seal, argon2, digest });
}

// Builders of API objects for the policy unit tests: no API server, fixed clock values.
import type { MailAddress, MailDevice, MailDomain } from "../api/schemas.ts";
import { desiredSecret, type PasswordRecord, type SecretObject } from "./secret.ts";

export const digest = (password: string) => `digest(${password})`;

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
      creationTimestamp: "2026-01-01T00:00:00Z",
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
    ...(options.generatedAt ? { status: { passwordGeneratedAt: options.generatedAt } } : {}),
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
    hash: `{ARGON2ID}hash(${password})`,
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
  });
  return { ...secret, metadata: { ...secret.metadata, uid: "secret-uid", resourceVersion: "7" } };
}

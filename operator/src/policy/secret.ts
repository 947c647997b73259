// The credential Secret of a device: the Secret devicepass wants, and how it reads one back.
// A tenant may edit its Secret at will, so what is read back counts only when the operator's
// seal over it verifies, its password matches its digest, and its hash has the configured shape.
import { apiVersion, components, kinds, labels, managedByValue, secretAnnotations } from "../api/names.ts";
import type { ClientSettings, MailDevice, OwnerReference } from "../api/schemas.ts";
import { mailProtocols } from "../api/schemas.ts";
import { isConfiguredHash, type Argon2Parameters } from "../credentials/password.ts";
import type { SealKey } from "../credentials/seal.ts";
import { decodeData, encodeData, type SecretObject } from "../kube/objects.ts";

export function controllerOf(secret: SecretObject): OwnerReference | undefined {
  return secret.metadata.ownerReferences?.find((ref) => ref.controller === true);
}

export function isOwnedBy(secret: SecretObject, device: MailDevice): boolean {
  const owner = controllerOf(secret);
  return owner?.kind === kinds.mailDevice.kind && owner.uid === device.metadata.uid;
}

const settingKeys = mailProtocols.flatMap((p) => [`${p}-host`, `${p}-port`, `${p}-security`]);
/** Every data key devicepass writes into a device Secret. */
export const ownedDataKeys = new Set(["username", "password", ...settingKeys]);

/** The Secret keys of the recommended client settings, e.g. imap-host, imap-port, imap-security. */
export function clientSettingsData(settings: ClientSettings): Record<string, string> {
  const data: Record<string, string> = {};
  for (const protocol of mailProtocols) {
    const endpoint = settings[protocol];
    if (!endpoint) continue;
    data[`${protocol}-host`] = endpoint.host;
    data[`${protocol}-port`] = String(endpoint.port);
    data[`${protocol}-security`] = endpoint.security;
  }
  return data;
}

export interface PasswordRecord {
  password: string;
  hash: string;
  digest: string;
  generatedAt: string;
  rotationCount: number;
  rotatedFor?: string | undefined;
  addressRotatedFor?: string | undefined;
}

/** What a Secret says about its password; undefined fields are missing or unreadable. */
export function readPasswordRecord(secret: SecretObject): Partial<PasswordRecord> & { username?: string } {
  const a = secret.metadata.annotations ?? {};
  const count = Number(a[secretAnnotations.rotationCount]);
  const data = decodeData(secret);
  return {
    username: data.username,
    password: data.password,
    hash: a[secretAnnotations.passwordHash],
    digest: a[secretAnnotations.passwordDigest],
    generatedAt: a[secretAnnotations.generatedAt],
    rotationCount: Number.isInteger(count) ? count : undefined,
    rotatedFor: a[secretAnnotations.rotatedFor],
    addressRotatedFor: a[secretAnnotations.addressRotatedFor],
  };
}

const sealPurpose = "devicepass-credential-v1";

/** What the seal binds: the password's record to this device, this Secret and this mail address. */
function sealFields(
  device: MailDevice,
  secretName: string,
  username: string,
  record: Omit<PasswordRecord, "password">,
): string[] {
  return [
    device.metadata.namespace!,
    device.metadata.name,
    device.metadata.uid,
    secretName,
    username,
    record.hash,
    record.digest,
    record.generatedAt,
    String(record.rotationCount),
    record.rotatedFor ?? "\u0000",
    record.addressRotatedFor ?? "\u0000",
  ];
}

export interface CredentialRules {
  seal: SealKey;
  argon2: Argon2Parameters;
  /** SHA-256 of a password, to check the Secret's digest annotation. */
  digest: (password: string) => string;
}

export type CredentialCheck =
  | { kind: "valid"; record: PasswordRecord }
  /** The password was changed or removed (it no longer matches its digest). */
  | { kind: "edited" }
  /** The record does not carry the operator's seal: forged, or edited around the password. */
  | { kind: "tampered" }
  /** Sealed and intact, but for another mail address or older argon2id parameters. */
  | { kind: "outdated"; why: "address" | "parameters" };

/** Reads a Secret of ours back as input: only a sealed, consistent record is valid. */
export function checkCredential(
  secret: SecretObject,
  device: MailDevice,
  mailAddress: string,
  rules: CredentialRules,
): CredentialCheck {
  const read = readPasswordRecord(secret);
  if (!read.password || !read.digest || rules.digest(read.password) !== read.digest)
    return { kind: "edited" };
  const { hash, generatedAt, rotationCount, username } = read;
  if (
    hash === undefined ||
    generatedAt === undefined ||
    rotationCount === undefined ||
    username === undefined
  )
    return { kind: "tampered" };
  const record: PasswordRecord = {
    password: read.password,
    hash,
    digest: read.digest,
    generatedAt,
    rotationCount,
    rotatedFor: read.rotatedFor,
    addressRotatedFor: read.addressRotatedFor,
  };
  const seal = secret.metadata.annotations?.[secretAnnotations.seal];
  if (!rules.seal.verify(sealPurpose, sealFields(device, secret.metadata.name, username, record), seal))
    return { kind: "tampered" };
  if (username !== mailAddress) return { kind: "outdated", why: "address" };
  if (!isConfiguredHash(hash, rules.argon2)) return { kind: "outdated", why: "parameters" };
  return { kind: "valid", record };
}

export interface DesiredSecretInput {
  device: MailDevice;
  secretName: string;
  mailAddress: string;
  settings: ClientSettings;
  record: PasswordRecord;
  seal: SealKey;
}

/** The whole Secret devicepass wants for a device: only the fields it owns, sealed. */
export function desiredSecret({
  device,
  secretName,
  mailAddress,
  settings,
  record,
  seal,
}: DesiredSecretInput): SecretObject {
  const annotations: Record<string, string> = {
    [secretAnnotations.passwordHash]: record.hash,
    [secretAnnotations.passwordDigest]: record.digest,
    [secretAnnotations.generatedAt]: record.generatedAt,
    [secretAnnotations.rotationCount]: String(record.rotationCount),
    [secretAnnotations.seal]: seal.seal(sealPurpose, sealFields(device, secretName, mailAddress, record)),
  };
  if (record.rotatedFor !== undefined) annotations[secretAnnotations.rotatedFor] = record.rotatedFor;
  if (record.addressRotatedFor !== undefined)
    annotations[secretAnnotations.addressRotatedFor] = record.addressRotatedFor;
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/basic-auth",
    metadata: deviceSecretMetadata(device, secretName, components.credentials, annotations),
    data: encodeData({ username: mailAddress, password: record.password, ...clientSettingsData(settings) }),
  };
}

/**
 * The metadata of a Secret a MailDevice owns (its credential or its invitation link): devicepass's
 * labels and the controlling owner reference, so it is garbage-collected with its device.
 */
export function deviceSecretMetadata(
  device: MailDevice,
  name: string,
  component: string,
  annotations: Record<string, string>,
): SecretObject["metadata"] {
  return {
    name,
    namespace: device.metadata.namespace!,
    labels: {
      [labels.managedBy]: managedByValue,
      [labels.component]: component,
      ...labelIfValid(labels.address, device.spec.address),
      ...labelIfValid(labels.device, device.metadata.name),
    },
    annotations,
    ownerReferences: [
      {
        apiVersion,
        kind: kinds.mailDevice.kind,
        name: device.metadata.name,
        uid: device.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
  };
}

const labelValuePattern = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Label values are at most 63 characters; longer object names are left unlabelled. */
export function labelIfValid(key: string, value: string): Record<string, string> {
  return value.length <= 63 && labelValuePattern.test(value) ? { [key]: value } : {};
}

/** True when `current` already carries everything `desired` says (others' additions are fine). */
export function secretMatches(current: SecretObject, desired: SecretObject): boolean {
  if (current.type !== desired.type) return false;
  const sameEntries = (want: Record<string, string> | undefined, have: Record<string, string> | undefined) =>
    Object.entries(want ?? {}).every(([k, v]) => have?.[k] === v);
  const wantData = desired.data ?? {};
  // A key of ours that is no longer wanted (settings removed) must go; keys others added may stay.
  const staleKey = Object.keys(current.data ?? {}).some((k) => ownedDataKeys.has(k) && !(k in wantData));
  return (
    !staleKey &&
    sameEntries(desired.metadata.labels, current.metadata.labels) &&
    sameEntries(desired.metadata.annotations, current.metadata.annotations) &&
    sameEntries(wantData, current.data) &&
    controllerOf(current)?.uid === controllerOf(desired)?.uid
  );
}

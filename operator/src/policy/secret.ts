// The credential Secret of a device: how devicepass reads one, and the Secret it wants.
import { apiVersion, kinds, labels, managedByValue, secretAnnotations } from "../api/names.ts";
import type { ClientSettings, MailDevice, OwnerReference } from "../api/schemas.ts";

export interface SecretObject {
  apiVersion?: string;
  kind?: string;
  type?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    deletionTimestamp?: string;
  };
  data?: Record<string, string>;
}

export const credentialsComponent = "credentials";

export function decodeData(secret: SecretObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, "base64").toString("utf8");
  return out;
}

export function encodeData(data: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(data).sort()) out[k] = Buffer.from(data[k]!, "utf8").toString("base64");
  return out;
}

export function controllerOf(secret: SecretObject): OwnerReference | undefined {
  return secret.metadata.ownerReferences?.find((ref) => ref.controller === true);
}

export function isOwnedBy(secret: SecretObject, device: MailDevice): boolean {
  const owner = controllerOf(secret);
  return owner?.kind === kinds.mailDevice.kind && owner.uid === device.metadata.uid;
}

const settingKeys = ["imap", "pop3", "smtp"].flatMap((p) => [`${p}-host`, `${p}-port`, `${p}-security`]);
/** Every data key devicepass writes into a device Secret. */
export const ownedDataKeys = new Set(["username", "password", ...settingKeys]);

/** The Secret keys of the recommended client settings, e.g. imap-host, imap-port, imap-security. */
export function clientSettingsData(settings: ClientSettings): Record<string, string> {
  const data: Record<string, string> = {};
  for (const protocol of ["imap", "pop3", "smtp"] as const) {
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

/** What a Secret of ours says about its password; undefined fields are missing or unreadable. */
export function readPasswordRecord(secret: SecretObject): Partial<PasswordRecord> {
  const a = secret.metadata.annotations ?? {};
  const count = Number(a[secretAnnotations.rotationCount]);
  return {
    password: decodeData(secret).password,
    hash: a[secretAnnotations.passwordHash],
    digest: a[secretAnnotations.passwordDigest],
    generatedAt: a[secretAnnotations.generatedAt],
    rotationCount: Number.isInteger(count) ? count : undefined,
    rotatedFor: a[secretAnnotations.rotatedFor],
    addressRotatedFor: a[secretAnnotations.addressRotatedFor],
  };
}

export interface DesiredSecretInput {
  device: MailDevice;
  secretName: string;
  mailAddress: string;
  settings: ClientSettings;
  record: PasswordRecord;
}

/** The whole Secret devicepass wants for a device: only the fields it owns. */
export function desiredSecret({
  device,
  secretName,
  mailAddress,
  settings,
  record,
}: DesiredSecretInput): SecretObject {
  const annotations: Record<string, string> = {
    [secretAnnotations.passwordHash]: record.hash,
    [secretAnnotations.passwordDigest]: record.digest,
    [secretAnnotations.generatedAt]: record.generatedAt,
    [secretAnnotations.rotationCount]: String(record.rotationCount),
  };
  if (record.rotatedFor !== undefined) annotations[secretAnnotations.rotatedFor] = record.rotatedFor;
  if (record.addressRotatedFor !== undefined)
    annotations[secretAnnotations.addressRotatedFor] = record.addressRotatedFor;
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/basic-auth",
    metadata: {
      name: secretName,
      namespace: device.metadata.namespace!,
      labels: {
        [labels.managedBy]: managedByValue,
        [labels.component]: credentialsComponent,
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
    },
    data: encodeData({ username: mailAddress, password: record.password, ...clientSettingsData(settings) }),
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

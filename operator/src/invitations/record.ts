// Invitation records: one ConfigMap per invitation link in the operator's namespace, named after
// the SHA-256 of the link's token. The operator writes the invitation (sealed with its HMAC key,
// which the portal never has); the portal redeems it once, writing only the argon2id hash.
import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { createdByAnnotation, invitationNames, labels, managedByValue } from "../api/names.ts";
import {
  clientSettingsSchema,
  mailAddressPattern,
  mailDeviceIcons,
  mailProtocols,
  type MailDevice,
} from "../api/schemas.ts";
import { dovecotSchemePrefix, type Argon2Parameters } from "../credentials/password.ts";
import { languages } from "./messages.ts";
import { recordNameForHash } from "./token.ts";

export const invitationStates = ["pending", "redeemed", "revoked"] as const;
export type InvitationState = (typeof invitationStates)[number];

/** Bounds that keep a record from making the portal hash with absurd costs. */
export const argon2ParametersSchema = z.strictObject({
  memoryCost: z.number().int().min(1024).max(262_144),
  timeCost: z.number().int().min(1).max(16),
  parallelism: z.number().int().min(1).max(16),
});

const kubernetesName = z.string().min(1).max(253);

/** What the operator decides about an invitation: the sealed part of a record, as JSON. */
export const invitationSchema = z.strictObject({
  /** The MailDevice the password is for. */
  device: z.strictObject({ namespace: kubernetesName, name: kubernetesName, uid: z.string().min(1).max(64) }),
  displayName: z.string().min(1).max(64),
  icon: z.enum(mailDeviceIcons),
  /** The mail address the device logs in as (the user name in every client setting). */
  address: z.string().max(254).regex(new RegExp(mailAddressPattern)),
  /** The device's `mail.devicepass.io/created-by`, shown as who invited; display only. */
  invitedBy: z.string().min(1).max(256).optional(),
  expiresAt: z.iso.datetime(),
  passwordLength: z.number().int().min(12).max(128),
  argon2: argon2ParametersSchema,
  clientSettings: clientSettingsSchema,
  /** The protocols the password is valid for: the pages and files show only their settings. */
  protocols: z.array(z.enum(mailProtocols)).min(1).max(3),
  /** The person's language where known (the e-mail's language; pages follow Accept-Language). */
  language: z.enum(languages).optional(),
});
export type Invitation = z.infer<typeof invitationSchema>;

/** The ConfigMap data keys of a record. */
export const recordKeys = {
  /** The invitation, JSON (invitationSchema); written by the operator only. */
  invitation: "invitation",
  /** The operator's HMAC of the record's name and `invitation`; carried through untouched. */
  seal: "seal",
  state: "state",
  redeemedAt: "redeemedAt",
  /** `{ARGON2ID}$argon2id$…` of the password the portal generated at redemption. */
  passwordHash: "passwordHash",
  /**
   * The password encrypted (AES-256-GCM) under a key that exists only in the page that showed
   * it, for the phone setup page and the .mobileconfig; removed once setupExpiresAt passed.
   */
  setupCiphertext: "setupCiphertext",
  setupExpiresAt: "setupExpiresAt",
} as const;

/** Dovecot's argon2id as @node-rs/argon2 writes it; nothing else is a password hash here. */
export const passwordHashPattern =
  /^\{ARGON2ID\}\$argon2id\$v=19\$m=\d{1,7},t=\d{1,2},p=\d{1,2}\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{16,}$/;

/** The data of an invitation record ConfigMap. */
export const invitationRecordDataSchema = z
  .strictObject({
    [recordKeys.invitation]: z.string().min(2).max(16_384),
    [recordKeys.seal]: z.string().min(1).max(512),
    [recordKeys.state]: z.enum(invitationStates),
    [recordKeys.redeemedAt]: z.iso.datetime().optional(),
    [recordKeys.passwordHash]: z.string().regex(passwordHashPattern).optional(),
    [recordKeys.setupCiphertext]: z.string().max(4096).optional(),
    [recordKeys.setupExpiresAt]: z.iso.datetime().optional(),
  })
  .refine(
    (d) =>
      (d.state === "redeemed") === (d.passwordHash !== undefined) &&
      (d.state === "redeemed") === (d.redeemedAt !== undefined),
    {
      message: "a redeemed record has passwordHash and redeemedAt, and only a redeemed one",
    },
  )
  .refine((d) => (d.setupCiphertext === undefined) === (d.setupExpiresAt === undefined), {
    message: "setupCiphertext and setupExpiresAt go together",
  });
export type InvitationRecordData = z.infer<typeof invitationRecordDataSchema>;

export interface ConfigMapObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  data?: Record<string, string>;
}

/** A record as read back: the ConfigMap, its parsed data, and the parsed invitation. */
export interface InvitationRecord {
  configMap: ConfigMapObject;
  data: InvitationRecordData;
  invitation: Invitation;
}

export class InvalidInvitationRecord extends Error {
  override readonly name = "InvalidInvitationRecord";
}

/** Is this ConfigMap labelled as an invitation record of devicepass? */
export function isInvitationRecord(configMap: ConfigMapObject): boolean {
  const l = configMap.metadata.labels ?? {};
  return (
    l[labels.managedBy] === managedByValue &&
    l[labels.component] === invitationNames.component &&
    configMap.metadata.name.startsWith(invitationNames.recordPrefix)
  );
}

/** Parses a record read from the API server; throws InvalidInvitationRecord for anything else. */
export function parseInvitationRecord(configMap: ConfigMapObject): InvitationRecord {
  if (!isInvitationRecord(configMap)) throw new InvalidInvitationRecord("not an invitation record");
  const data = invitationRecordDataSchema.safeParse(configMap.data ?? {});
  if (!data.success) throw new InvalidInvitationRecord(`record data: ${z.prettifyError(data.error)}`);
  let json: unknown;
  try {
    json = JSON.parse(data.data.invitation);
  } catch {
    throw new InvalidInvitationRecord("record invitation: not JSON");
  }
  const invitation = invitationSchema.safeParse(json);
  if (!invitation.success)
    throw new InvalidInvitationRecord(`record invitation: ${z.prettifyError(invitation.error)}`);
  return { configMap, data: data.data, invitation: invitation.data };
}

export type InvitationStatus = InvitationState | "expired";

/** What a person opening the link finds: a redeemed or revoked record stays so; a pending one may expire. */
export function invitationStatus(record: InvitationRecord, now: Date): InvitationStatus {
  if (record.data.state !== "pending") return record.data.state;
  return Date.parse(record.invitation.expiresAt) <= now.getTime() ? "expired" : "pending";
}

/** The bytes the operator's seal covers: a domain tag, the record's name, and the invitation JSON. */
export function invitationSealPayload(recordName: string, invitationJson: string): string {
  return `devicepass invitation seal v1\n${recordName}\n${invitationJson}`;
}

/** Seals a payload; the operator passes one built on its own key (hmacInvitationSealer). */
export type InvitationSealer = (payload: string) => string;

const hmacPrefix = "hmac-sha256:";

/** HMAC-SHA256 under the operator's key, as `hmac-sha256:<hex>`. */
export function hmacInvitationSealer(key: Buffer): InvitationSealer {
  return (payload) => hmacPrefix + createHmac("sha256", key).update(payload, "utf8").digest("hex");
}

/** Did the operator (the holder of `key`) write this record's invitation under this name? */
export function verifyInvitationSeal(record: InvitationRecord, key: Buffer): boolean {
  const expected = Buffer.from(
    hmacInvitationSealer(key)(invitationSealPayload(record.configMap.metadata.name, record.data.invitation)),
  );
  const actual = Buffer.from(record.data.seal);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

export interface InvitationInput {
  /** The operator's namespace (where the portal reads records). */
  namespace: string;
  /** tokenHash(token) of the link's token. */
  tokenHash: string;
  device: MailDevice;
  /** The mail address the device logs in as. */
  address: string;
  expiresAt: Date;
  passwordLength: number;
  argon2: Argon2Parameters;
  /** The device's resolved client settings (address over domain over operator default). */
  clientSettings: z.input<typeof clientSettingsSchema>;
  language?: Invitation["language"];
  seal: InvitationSealer;
}

/** The record the operator creates for a new invitation link: pending, sealed. */
export function desiredInvitationRecord(input: InvitationInput): ConfigMapObject {
  const { device } = input;
  const invitedBy = device.metadata.annotations?.[createdByAnnotation];
  const invitation = invitationSchema.parse({
    device: {
      namespace: device.metadata.namespace ?? "",
      name: device.metadata.name,
      uid: device.metadata.uid,
    },
    displayName: device.spec.displayName,
    icon: device.spec.icon,
    address: input.address,
    ...(invitedBy ? { invitedBy: invitedBy.slice(0, 256) } : {}),
    expiresAt: input.expiresAt.toISOString(),
    passwordLength: input.passwordLength,
    argon2: input.argon2,
    clientSettings: input.clientSettings,
    protocols: device.spec.protocols ?? [...mailProtocols],
    ...(input.language ? { language: input.language } : {}),
  } satisfies z.input<typeof invitationSchema>);
  const name = recordNameForHash(input.tokenHash);
  const invitationJson = JSON.stringify(invitation);
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name,
      namespace: input.namespace,
      labels: {
        [labels.managedBy]: managedByValue,
        [labels.component]: invitationNames.component,
        [invitationNames.deviceUidLabel]: device.metadata.uid,
      },
    },
    data: {
      [recordKeys.invitation]: invitationJson,
      [recordKeys.seal]: input.seal(invitationSealPayload(name, invitationJson)),
      [recordKeys.state]: "pending",
    },
  };
}

export interface Redemption {
  passwordHash: string;
  redeemedAt: Date;
  /** The encrypted password for the phone setup page and the profile, and until when it serves. */
  setup?: { ciphertext: string; expiresAt: Date } | undefined;
}

/** The record after redemption: the same ConfigMap (resourceVersion kept as the precondition). */
export function redeemedRecord(record: InvitationRecord, redemption: Redemption): ConfigMapObject {
  if (record.data.state !== "pending") throw new Error("only a pending invitation can be redeemed");
  if (
    !redemption.passwordHash.startsWith(dovecotSchemePrefix) ||
    !passwordHashPattern.test(redemption.passwordHash)
  )
    throw new Error("not an argon2id hash for Dovecot");
  const data: Record<string, string> = {
    ...record.configMap.data,
    [recordKeys.state]: "redeemed",
    [recordKeys.redeemedAt]: redemption.redeemedAt.toISOString(),
    [recordKeys.passwordHash]: redemption.passwordHash,
  };
  if (redemption.setup) {
    data[recordKeys.setupCiphertext] = redemption.setup.ciphertext;
    data[recordKeys.setupExpiresAt] = redemption.setup.expiresAt.toISOString();
  }
  return { ...record.configMap, data };
}

/** The record without its setup ciphertext (once the setup window closed). */
export function withoutSetup(record: InvitationRecord): ConfigMapObject {
  const data = { ...record.configMap.data };
  delete data[recordKeys.setupCiphertext];
  delete data[recordKeys.setupExpiresAt];
  return { ...record.configMap, data };
}

/** The record revoked (rotation or deletion of its device): its link shows "revoked" from now on. */
export function revokedRecord(record: InvitationRecord): ConfigMapObject {
  const data: Record<string, string> = { ...withoutSetup(record).data, [recordKeys.state]: "revoked" };
  delete data[recordKeys.passwordHash];
  delete data[recordKeys.redeemedAt];
  return { ...record.configMap, data };
}

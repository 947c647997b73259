// The invitation link Secret of a device with delivery Invitation (`<device>-invitation`): the
// Secret devicepass wants, and how it reads one back. The tenant may edit it at will, so its
// bookkeeping (which invitation is the device's current one, the rotate values it was issued for,
// whether it was e-mailed) counts only under the operator's seal, and its link only when the
// link's token hashes to the sealed hash.
import { components, invitationNames, invitationSecretName, secretAnnotations } from "../api/names.ts";
import type { MailDevice } from "../api/schemas.ts";
import type { SealKey } from "../credentials/seal.ts";
import { invitationLink, isWellFormedToken, tokenHash } from "../invitations/token.ts";
import { decodeData, encodeData, type SecretObject } from "../kube/objects.ts";
import { deviceSecretMetadata } from "./secret.ts";

/** What the link Secret says about the device's current invitation (no secret: the token is only hashed). */
export interface LinkRecord {
  /** Hex SHA-256 of the link's token: the invitation record's name. */
  tokenHash: string;
  issuedAt: string;
  expiresAt: string;
  /** Invitations issued after the first one. */
  rotationCount: number;
  /** The device's and the address's rotate values this invitation was issued for. */
  rotatedFor?: string | undefined;
  addressRotatedFor?: string | undefined;
  /** When the link was e-mailed; absent until it was. */
  sentAt?: string | undefined;
}

const sealPurpose = "devicepass-invitation-link-v1";
const absent = "\u0000";

function sealFields(device: MailDevice, secretName: string, record: LinkRecord): string[] {
  return [
    device.metadata.namespace!,
    device.metadata.name,
    device.metadata.uid,
    secretName,
    record.tokenHash,
    record.issuedAt,
    record.expiresAt,
    String(record.rotationCount),
    record.rotatedFor ?? absent,
    record.addressRotatedFor ?? absent,
    record.sentAt ?? absent,
  ];
}

export type LinkCheck =
  /**
   * Sealed and intact. `token` is the link's token when the `url` key still holds a link whose
   * token hashes to the sealed hash (read back from a tenant's Secret: never trusted otherwise).
   */
  | { kind: "valid"; record: LinkRecord; token: string | undefined; url: string | undefined }
  /** The bookkeeping does not carry the operator's seal: forged, replayed onto another device, or edited. */
  | { kind: "tampered" };

const linkPattern = /^https?:\/\/[^/?#\s]+\/i\/([A-Za-z0-9_-]{43})$/;

/** The token of a link whose token hashes to `hash`; undefined for anything else. */
export function verifiedToken(url: string | undefined, hash: string): string | undefined {
  const token = url === undefined ? undefined : linkPattern.exec(url)?.[1];
  if (token === undefined || !isWellFormedToken(token)) return undefined;
  return tokenHash(token) === hash ? token : undefined;
}

/** Reads a link Secret of ours back as input. */
export function checkLink(secret: SecretObject, device: MailDevice, seal: SealKey): LinkCheck {
  const a = secret.metadata.annotations ?? {};
  const count = Number(a[secretAnnotations.rotationCount]);
  const record: LinkRecord = {
    tokenHash: a[secretAnnotations.invitationHash] ?? "",
    issuedAt: a[secretAnnotations.generatedAt] ?? "",
    expiresAt: a[secretAnnotations.expiresAt] ?? "",
    rotationCount: Number.isInteger(count) && count >= 0 ? count : -1,
    rotatedFor: a[secretAnnotations.rotatedFor],
    addressRotatedFor: a[secretAnnotations.addressRotatedFor],
    sentAt: a[secretAnnotations.sentAt],
  };
  if (
    !/^[0-9a-f]{64}$/.test(record.tokenHash) ||
    !Number.isFinite(Date.parse(record.issuedAt)) ||
    !Number.isFinite(Date.parse(record.expiresAt)) ||
    record.rotationCount < 0 ||
    (record.sentAt !== undefined && !Number.isFinite(Date.parse(record.sentAt)))
  )
    return { kind: "tampered" };
  if (!seal.verify(sealPurpose, sealFields(device, secret.metadata.name, record), a[secretAnnotations.seal]))
    return { kind: "tampered" };
  const url = decodeData(secret)[invitationNames.urlKey];
  return { kind: "valid", record, token: verifiedToken(url, record.tokenHash), url };
}

export interface DesiredLinkInput {
  device: MailDevice;
  /** The portal's origin; with the token, the link. */
  portalUrl: string;
  token: string;
  record: LinkRecord;
  seal: SealKey;
}

/** The whole link Secret devicepass wants for a device: only the fields it owns, sealed. */
export function desiredLinkSecret({
  device,
  portalUrl,
  token,
  record,
  seal,
}: DesiredLinkInput): SecretObject {
  const name = invitationSecretName(device.metadata.name);
  if (tokenHash(token) !== record.tokenHash) throw new Error("the token does not match the record");
  const annotations: Record<string, string> = {
    [secretAnnotations.invitationHash]: record.tokenHash,
    [secretAnnotations.generatedAt]: record.issuedAt,
    [secretAnnotations.expiresAt]: record.expiresAt,
    [secretAnnotations.rotationCount]: String(record.rotationCount),
    [secretAnnotations.seal]: seal.seal(sealPurpose, sealFields(device, name, record)),
  };
  if (record.rotatedFor !== undefined) annotations[secretAnnotations.rotatedFor] = record.rotatedFor;
  if (record.addressRotatedFor !== undefined)
    annotations[secretAnnotations.addressRotatedFor] = record.addressRotatedFor;
  if (record.sentAt !== undefined) annotations[secretAnnotations.sentAt] = record.sentAt;
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: deviceSecretMetadata(device, name, components.invitationLink, annotations),
    data: encodeData({ [invitationNames.urlKey]: invitationLink(portalUrl, token) }),
  };
}

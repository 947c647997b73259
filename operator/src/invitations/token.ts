// Invitation tokens: 256 random bits in the link, only their SHA-256 in the cluster (as the name
// of the invitation record), so that nobody who reads the cluster can open a link.
import { createHash, randomBytes } from "node:crypto";
import { invitationNames } from "../api/names.ts";

/** Bytes of randomness in a token: 256 bits, well above the 128 the threat model asks for. */
export const tokenBytes = 32;

/** base64url of 32 bytes, without padding: 43 characters. */
const tokenPattern = /^[A-Za-z0-9_-]{43}$/;

/** A new token from the CSPRNG, base64url. */
export function newInvitationToken(random = randomBytes): string {
  return random(tokenBytes).toString("base64url");
}

/** Does `text` have the shape of a token? Anything else is refused before any lookup. */
export function isWellFormedToken(text: string): boolean {
  if (!tokenPattern.test(text)) return false;
  // The last character carries 2 padding bits that must be zero: one spelling per token.
  return Buffer.from(text, "base64url").toString("base64url") === text;
}

/** Hex SHA-256 of the token: what the cluster keeps instead of the token. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** The invitation record's ConfigMap name: the prefix and the full 64-digit hash (86 characters). */
export function invitationRecordName(token: string): string {
  return recordNameForHash(tokenHash(token));
}

export function recordNameForHash(hash: string): string {
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error("not a hex SHA-256");
  return `${invitationNames.recordPrefix}${hash}`;
}

/** The link a person opens: `<portal base URL>/i/<token>`. */
export function invitationLink(portalBaseUrl: string, token: string): string {
  return `${portalBaseUrl.replace(/\/+$/, "")}/i/${token}`;
}

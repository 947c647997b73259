// The password for the few minutes after it was shown: encrypted (AES-256-GCM) under a key that
// exists only in the page that showed it (and its QR code), stored in the invitation record, so
// that any portal replica can serve the phone setup page and the profile, and nobody who reads
// the cluster can decrypt it. The record's name is the associated data: a box opens only there.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

const version = "v1";

export function newSetupKey(): Buffer {
  return randomBytes(32);
}

export function sealSetup(key: Buffer, recordName: string, password: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(recordName, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(password, "utf8"), cipher.final()]);
  return [version, iv, ciphertext, cipher.getAuthTag()]
    .map((p) => (typeof p === "string" ? p : p.toString("base64url")))
    .join(".");
}

/** The password, or undefined when the key, the record or the box is not the right one. */
export function openSetup(key: Buffer, recordName: string, box: string): string | undefined {
  const [v, iv, ciphertext, tag, ...rest] = box.split(".");
  if (
    v !== version ||
    iv === undefined ||
    ciphertext === undefined ||
    tag === undefined ||
    rest.length > 0 ||
    key.length !== 32
  )
    return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"), {
      authTagLength: 16,
    });
    decipher.setAAD(Buffer.from(recordName, "utf8"));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, "base64url")), decipher.final()]).toString(
      "utf8",
    );
  } catch {
    return undefined;
  }
}

/** A key from the URL: base64url of 32 bytes, or undefined. */
export function parseSetupKey(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]{43}$/.test(text)) return undefined;
  const key = Buffer.from(text, "base64url");
  return key.length === 32 && key.toString("base64url") === text ? key : undefined;
}

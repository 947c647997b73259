// Password generation from the CSPRNG without modulo bias, and argon2id hashing for the mail server.
import { createHash, randomBytes } from "node:crypto";
import { hash } from "@node-rs/argon2";

/** @node-rs/argon2's Algorithm.Argon2id (a const enum, which erasable TypeScript cannot import). */
const argon2id = 2;

export const alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * A random password of `length` characters drawn uniformly from `alphabet`: bytes at or above
 * the largest multiple of the alphabet's size are rejected, so no character is more likely.
 */
export function generatePassword(length = 24, alphabet = alphanumeric, random = randomBytes): string {
  if (alphabet.length < 2 || alphabet.length > 256)
    throw new RangeError("alphabet must have 2 to 256 characters");
  if (!Number.isInteger(length) || length < 1) throw new RangeError("length must be a positive integer");
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    for (const byte of random(length * 2)) {
      if (byte >= limit) continue;
      out += alphabet[byte % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

export interface Argon2Parameters {
  /** Memory in KiB. */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** OWASP's recommended argon2id parameters: 19 MiB, 2 iterations, 1 lane. */
export const owaspArgon2id: Argon2Parameters = { memoryCost: 19 * 1024, timeCost: 2, parallelism: 1 };

/** Dovecot needs the scheme prefix to tell an argon2id hash from its default CRYPT scheme. */
export const dovecotSchemePrefix = "{ARGON2ID}";

/**
 * The argon2id hash as Dovecot reads it, `{ARGON2ID}$argon2id$v=19$m=…`. Runs on libuv's thread
 * pool, so many devices hash in parallel without blocking the event loop.
 */
export async function hashPassword(
  password: string,
  params: Argon2Parameters = owaspArgon2id,
): Promise<string> {
  const phc = await hash(password, { algorithm: argon2id, ...params });
  return dovecotSchemePrefix + phc;
}

/** A fast digest kept beside the password in its own Secret, to notice hand edits cheaply. */
export function passwordDigest(password: string): string {
  return createHash("sha256").update(password, "utf8").digest("hex");
}

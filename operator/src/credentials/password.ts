// Password generation from the CSPRNG without modulo bias, argon2id hashing for the mail server
// (at most one hash per core at a time), and the one shape of hash the database accepts.
import { createHash, randomBytes } from "node:crypto";
import { hash } from "@node-rs/argon2";

/** @node-rs/argon2's Algorithm.Argon2id (a const enum, which erasable TypeScript cannot import). */
const argon2id = 2;

export const alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Bounds of generated password lengths: the flag, the chart and MailDomain.devicePolicy share them. */
export const passwordLengthBounds = { min: 12, max: 128, default: 24 } as const;

/**
 * A random password of `length` characters drawn uniformly from `alphabet`: bytes at or above
 * the largest multiple of the alphabet's size are rejected, so no character is more likely.
 */
export function generatePassword(
  length: number = passwordLengthBounds.default,
  alphabet = alphanumeric,
  random = randomBytes,
): string {
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
 * Hashes in flight at once by default. Each takes memoryCost of memory (19 MiB: most of a small
 * operator's memory budget) and a core for ~10 ms, so one hashing thread issues ~90 passwords a
 * second, more than an API server takes the five writes of each new device at.
 */
export const defaultHashConcurrency = 1;
let hashSlots = defaultHashConcurrency;
let hashesInFlight = 0;
const waitingForSlot: (() => void)[] = [];

/** Hashes the process may run at once from now on (the operator's --hash-concurrency). */
export function setHashConcurrency(slots: number): void {
  if (!Number.isInteger(slots) || slots < 1)
    throw new RangeError("hash concurrency must be a positive integer");
  hashSlots = slots;
  while (hashesInFlight < hashSlots && waitingForSlot.length > 0) {
    hashesInFlight++;
    waitingForSlot.shift()!();
  }
}

/** Hashes running now (at most the concurrency set). */
export function hashesRunning(): number {
  return hashesInFlight;
}

async function inHashSlot<T>(work: () => Promise<T>): Promise<T> {
  if (hashesInFlight >= hashSlots) await new Promise<void>((resolve) => waitingForSlot.push(resolve));
  else hashesInFlight++;
  try {
    return await work();
  } finally {
    const next = waitingForSlot.shift();
    if (next) next();
    else hashesInFlight--;
  }
}

/**
 * The argon2id hash as Dovecot reads it, `{ARGON2ID}$argon2id$v=19$m=…`. Runs on libuv's thread
 * pool without blocking the event loop, at most as many at once as setHashConcurrency allows.
 */
export function hashPassword(password: string, params: Argon2Parameters = owaspArgon2id): Promise<string> {
  return inHashSlot(
    async () => dovecotSchemePrefix + (await hash(password, { algorithm: argon2id, ...params })),
  );
}

/**
 * Is `value` an argon2id hash of exactly the configured parameters, as hashPassword writes it (a
 * 16-byte salt and a 32-byte output, unpadded base64)? Nothing else may reach the database: no
 * other scheme, no cheaper parameters, no TAB or newline.
 */
export function isConfiguredHash(value: string, params: Argon2Parameters): boolean {
  const { memoryCost: m, timeCost: t, parallelism: p } = params;
  const key = `${m},${t},${p}`;
  let shape = hashShapes.get(key);
  if (!shape) {
    shape = new RegExp(
      `^\\{ARGON2ID\\}\\$argon2id\\$v=19\\$m=${m},t=${t},p=${p}\\$[A-Za-z0-9+/]{22}\\$[A-Za-z0-9+/]{43}$`,
    );
    hashShapes.set(key, shape);
  }
  return shape.test(value);
}

/** The compiled shape per parameters: compiling it for every check cost more than the check. */
const hashShapes = new Map<string, RegExp>();

/** A fast digest kept beside the password in its own Secret, to notice hand edits cheaply. */
export function passwordDigest(password: string): string {
  return createHash("sha256").update(password, "utf8").digest("hex");
}

// The operator's seal: an HMAC-SHA256, under a key only the operator holds, over every value it
// writes into a place a tenant can edit (a device's credential Secret). What it reads back from
// there is trusted only when the seal verifies: a tenant can change its Secret, not forge a seal.
import { createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";

/** Bytes of a new seal key; shorter keys are refused. */
export const sealKeyBytes = 32;

export class SealKey {
  private readonly key: Buffer;
  /** The key prepared once: createHmac with a Buffer prepares it again on every call (the bench's top cost). */
  private readonly hmacKey: KeyObject;

  constructor(key: Buffer) {
    if (key.length < sealKeyBytes) throw new Error(`the seal key must have at least ${sealKeyBytes} bytes`);
    this.key = key;
    this.hmacKey = createSecretKey(key);
  }

  static generate(): SealKey {
    return new SealKey(randomBytes(sealKeyBytes));
  }

  /** The key as Secret data (base64); only for storing it in the seal key Secret. */
  export(): string {
    return this.key.toString("base64");
  }

  /** The seal of `purpose` over `fields`: an unambiguous encoding, so no two field lists collide. */
  seal(purpose: string, fields: readonly string[]): string {
    const mac = createHmac("sha256", this.hmacKey);
    for (const part of [purpose, ...fields]) {
      const bytes = Buffer.from(part, "utf8");
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      mac.update(length).update(bytes);
    }
    return mac.digest("base64url");
  }

  verify(purpose: string, fields: readonly string[], seal: string | undefined): boolean {
    if (seal === undefined) return false;
    const want = Buffer.from(this.seal(purpose, fields), "utf8");
    const have = Buffer.from(seal, "utf8");
    return want.length === have.length && timingSafeEqual(want, have);
  }

  /** A keyed number in [0, n): placement a tenant cannot predict or aim at. */
  bucket(purpose: string, value: string, n: number): number {
    const mac = createHmac("sha256", this.hmacKey).update(`${purpose}\0${value}`).digest();
    return mac.readUInt32BE(0) % n;
  }
}

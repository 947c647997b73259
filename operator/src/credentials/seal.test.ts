import { describe, expect, it } from "vitest";
import { SealKey } from "./seal.ts";

describe("SealKey", () => {
  const key = new SealKey(Buffer.alloc(32, 7));

  it("verifies its own seal and nothing changed", () => {
    const seal = key.seal("credential", ["ns", "dev", "hash"]);
    expect(key.verify("credential", ["ns", "dev", "hash"], seal)).toBe(true);
    expect(key.verify("credential", ["ns", "dev", "hash2"], seal)).toBe(false);
    expect(key.verify("other", ["ns", "dev", "hash"], seal)).toBe(false);
    expect(key.verify("credential", ["ns", "dev", "hash"], undefined)).toBe(false);
    expect(key.verify("credential", ["ns", "dev", "hash"], seal.slice(1))).toBe(false);
  });

  it("encodes fields unambiguously: moving a boundary changes the seal", () => {
    expect(key.seal("p", ["ab", "c"])).not.toBe(key.seal("p", ["a", "bc"]));
    expect(key.seal("p", ["a", ""])).not.toBe(key.seal("p", ["a"]));
  });

  it("differs under another key", () => {
    const other = new SealKey(Buffer.alloc(32, 8));
    expect(other.verify("p", ["x"], key.seal("p", ["x"]))).toBe(false);
  });

  it("refuses short keys", () => {
    expect(() => new SealKey(Buffer.alloc(16))).toThrow(/at least 32 bytes/);
  });

  it("places values in buckets spread over the range, fixed per key", () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[key.bucket("shard", `user${i}@example.com`, 8)]!++;
    for (const n of counts) expect(n).toBeGreaterThan(800);
    expect(key.bucket("shard", "a@b.c", 64)).toBe(key.bucket("shard", "a@b.c", 64));
  });
});

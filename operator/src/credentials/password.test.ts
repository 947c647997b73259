import { verify } from "@node-rs/argon2";
import { describe, expect, it } from "vitest";
import {
  alphanumeric,
  defaultHashConcurrency,
  generatePassword,
  hashesRunning,
  hashPassword,
  isConfiguredHash,
  passwordDigest,
  setHashConcurrency,
} from "./password.ts";

describe("generatePassword", () => {
  it("defaults to 24 letters and digits", () => {
    const password = generatePassword();
    expect(password).toMatch(/^[A-Za-z0-9]{24}$/);
  });

  it("never uses a byte at or above the largest multiple of the alphabet size (no modulo bias)", () => {
    // 62 characters: bytes 248..255 must be skipped, not folded onto the first 8 characters.
    const bytes = [248, 255, 0, 61, 62, 247];
    const random = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => bytes[i % bytes.length]!));
    expect(generatePassword(4, alphanumeric, random)).toBe("A9A9");
  });

  it("draws characters uniformly", () => {
    const counts = new Map<string, number>();
    const text = generatePassword(62 * 2000);
    for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // Each character expects 2000 draws; a chi-square over 61 degrees of freedom stays far below 120.
    const chiSquare = [...counts.values()].reduce((sum, n) => sum + (n - 2000) ** 2 / 2000, 0);
    expect(chiSquare).toBeLessThan(120);
  });

  it("rejects unusable arguments", () => {
    expect(() => generatePassword(0)).toThrow(RangeError);
    expect(() => generatePassword(8, "a")).toThrow(RangeError);
  });
});

describe("hashPassword", () => {
  it("produces an argon2id hash with the Dovecot scheme prefix at OWASP parameters", async () => {
    const hashed = await hashPassword("correct horse battery staple");
    expect(hashed).toMatch(/^\{ARGON2ID\}\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verify(hashed.slice("{ARGON2ID}".length), "correct horse battery staple")).toBe(true);
    expect(await verify(hashed.slice("{ARGON2ID}".length), "wrong")).toBe(false);
  });

  it("honours configured parameters", async () => {
    const hashed = await hashPassword("pw", { memoryCost: 8192, timeCost: 1, parallelism: 1 });
    expect(hashed).toContain("m=8192,t=1,p=1");
  });
});

describe("isConfiguredHash", () => {
  const params = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

  it("accepts what hashPassword writes with the configured parameters, and nothing else", async () => {
    const good = await hashPassword("pw", params);
    expect(isConfiguredHash(good, params)).toBe(true);
    expect(isConfiguredHash(good, { ...params, timeCost: 2 })).toBe(false); // other parameters
    expect(isConfiguredHash(good.slice("{ARGON2ID}".length), params)).toBe(false); // no scheme
    expect(isConfiguredHash(`${good}\n`, params)).toBe(false);
    expect(isConfiguredHash(`${good}\nalice@example.com\tns/x\timap\t{PLAIN}pw`, params)).toBe(false);
    expect(isConfiguredHash(good.replace("argon2id", "argon2i"), params)).toBe(false);
    expect(isConfiguredHash("{PLAIN}secret", params)).toBe(false);
    expect(isConfiguredHash(`${good}AAAA`, params)).toBe(false); // longer output
  });
});

describe("hashPassword concurrency", () => {
  it("hashes many passwords at once correctly (queued beyond the concurrency)", async () => {
    const params = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
    const passwords = Array.from({ length: 12 }, (_, i) => `pw-${i}`);
    const hashes = await Promise.all(passwords.map((p) => hashPassword(p, params)));
    for (const [i, h] of hashes.entries())
      expect(await verify(h.slice("{ARGON2ID}".length), passwords[i]!)).toBe(true);
  });
});

describe("passwordDigest", () => {
  it("is the hex SHA-256 of the password", () => {
    expect(passwordDigest("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});

describe("setHashConcurrency", () => {
  it("runs at most that many hashes at once, and lets waiting ones start when it is raised", async () => {
    const params = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
    setHashConcurrency(1);
    try {
      const hashes = [hashPassword("a", params), hashPassword("b", params), hashPassword("c", params)];
      expect(hashesRunning()).toBe(1);
      setHashConcurrency(3);
      expect(hashesRunning()).toBe(3);
      expect(new Set(await Promise.all(hashes)).size).toBe(3);
      expect(hashesRunning()).toBe(0);
      expect(() => setHashConcurrency(0)).toThrow(RangeError);
    } finally {
      setHashConcurrency(defaultHashConcurrency);
    }
  });
});

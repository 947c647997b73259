import { describe, expect, it } from "vitest";
import { addressKey, fnv1a32, parseShard, renderShards, shardOf, type PassdbEntry } from "./format.ts";

const entry = (
  address: string,
  device: string,
  hash = `{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$${device}`,
): PassdbEntry => ({
  address,
  device,
  protocols: ["smtp", "imap"],
  hash,
});

describe("addressKey", () => {
  it("keeps lower-case letters, digits, dots and dashes and escapes the rest", () => {
    expect(addressKey("Alice.Smith-1@Example.com")).toBe("alice.smith-1_40example.com");
    expect(addressKey("a_b+c@x.io")).toBe("a_5fb_2bc_40x.io");
  });

  it("is injective where a naive replacement would not be", () => {
    expect(addressKey("a_40b@x.io")).not.toBe(addressKey("a@b@x.io"));
  });
});

describe("shards", () => {
  it("uses FNV-1a 32", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
  });

  it("places an address in the same shard whatever its case", () => {
    expect(shardOf("Alice@Example.com", 64)).toBe(shardOf("alice@example.com", 64));
  });

  it("renders identical bytes for identical state, whatever the order of the entries", () => {
    const a = [entry("b@x.io", "ns/2"), entry("a@x.io", "ns/1"), entry("a@x.io", "ns/0")];
    const b = [a[2]!, a[0]!, a[1]!];
    expect(renderShards(a, 4)).toEqual(renderShards(b, 4));
  });

  it("round-trips entries, with protocols sorted", () => {
    const entries = [entry("a@x.io", "ns/1"), entry("a@x.io", "ns/0"), entry("c@y.io", "other/9")];
    const shards = renderShards(entries, 3);
    const parsed = [...shards.values()].flatMap((data) => parseShard(data));
    expect(parsed).toHaveLength(3);
    expect(parsed).toContainEqual({ ...entries[0], protocols: ["imap", "smtp"] });
    const file = [...shards.values()].find((d) => d.has("a_40x.io"))!.get("a_40x.io")!;
    expect(file.split("\n").slice(1, 3)).toEqual([
      "a@x.io\tns/0\timap,smtp\t{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$ns/0",
      "a@x.io\tns/1\timap,smtp\t{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$ns/1",
    ]);
  });

  it("keeps every shard, empty ones included", () => {
    expect(renderShards([], 5).size).toBe(5);
  });

  it("spreads 50,000 devices so that no shard comes near the 1 MiB Secret limit", () => {
    const hash = "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$" + "s".repeat(22) + "$" + "h".repeat(43);
    const entries = Array.from({ length: 50_000 }, (_, i) =>
      entry(`user${Math.floor(i / 5)}@example.com`, `tenant-${i % 100}/device-${i}`, hash),
    );
    const shards = renderShards(entries, 64);
    const sizes = [...shards.values()].map((data) =>
      [...data].reduce((sum, [k, v]) => sum + k.length + Math.ceil(v.length / 3) * 4, 0),
    );
    expect(Math.max(...sizes)).toBeLessThan(512 * 1024);
  });

  it("skips malformed lines when parsing", () => {
    expect(parseShard({ k: "# header\ngarbage\na@x.io\tns/1\timap\t{ARGON2ID}h\n" })).toEqual([
      { address: "a@x.io", device: "ns/1", protocols: ["imap"], hash: "{ARGON2ID}h" },
    ]);
  });
});

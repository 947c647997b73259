// The registry's per-shard index follows its records: loaded, taken, lapsed.
import { describe, expect, it } from "vitest";
import { OwnershipRegistry } from "./ownership-registry.ts";

const shardOf = (address: string) => (address.startsWith("a") ? 0 : 1);

describe("OwnershipRegistry.inShard", () => {
  it("lists the records of one shard as they are loaded, taken and lapse", () => {
    let now = new Date("2026-12-01T00:00:00Z");
    const registry = new OwnershipRegistry({ graceMs: 60_000, now: () => now, shardOf });
    registry.load([
      { address: "alice@example.com", namespace: "team-a", since: "2026-11-01T00:00:00Z" },
      { address: "bob@example.com", namespace: "team-b", since: "2026-11-01T00:00:00Z" },
    ]);
    expect(registry.inShard(0).map((r) => r.address)).toEqual(["alice@example.com"]);
    expect(registry.inShard(1).map((r) => r.address)).toEqual(["bob@example.com"]);

    const claimed = {
      admittedNamespaces: new Set(["team-a"]),
      oldestAdmitted: "team-a",
      reserved: undefined,
    };
    registry.resolve("anna@example.com", claimed);
    expect(
      registry
        .inShard(0)
        .map((r) => r.address)
        .sort(),
    ).toEqual(["alice@example.com", "anna@example.com"]);

    // Nobody claims alice any more: released, then gone after the grace period, from its shard too.
    const unclaimed = {
      admittedNamespaces: new Set<string>(),
      oldestAdmitted: undefined,
      reserved: undefined,
    };
    expect(registry.resolve("alice@example.com", unclaimed)?.releasedAt).toBeDefined();
    now = new Date(now.getTime() + 61_000);
    expect(registry.resolve("alice@example.com", unclaimed)).toBeUndefined();
    expect(registry.inShard(0).map((r) => r.address)).toEqual(["anna@example.com"]);
    expect(registry.inShard(2)).toEqual([]);
  });
});

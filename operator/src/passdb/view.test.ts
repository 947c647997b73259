import { describe, expect, it } from "vitest";
import { encodeData } from "../kube/objects.ts";
import { fakeHash } from "../policy/fixtures.test-support.ts";
import { renderShard, type PassdbEntry } from "./format.ts";
import { diffEntries, PassdbView, type EntryChange } from "./view.ts";

const e = (device: string, hash: string, address = "a@x.io"): PassdbEntry => ({
  address,
  device,
  protocols: ["imap"],
  hash,
});

describe("diffEntries", () => {
  it("tells added, changed and removed entries apart", () => {
    const changes = diffEntries([e("ns/1", "h1"), e("ns/2", "h2")], [e("ns/1", "h1b"), e("ns/3", "h3")]);
    expect(changes.map((c) => [c.kind, c.entry.device])).toEqual([
      ["changed", "ns/1"],
      ["added", "ns/3"],
      ["removed", "ns/2"],
    ]);
  });
});

describe("PassdbView", () => {
  const owner = { address: "a@x.io", namespace: "ns", since: "2026-01-01T00:00:00Z" };
  const shard = (name: string, entries: PassdbEntry[]) => ({
    metadata: { name },
    data: encodeData(Object.fromEntries(renderShard([{ address: "a@x.io", entries, owner }], 1 << 20).files)),
  });

  it("tracks the published hash per device across shard updates and deletions", () => {
    const view = new PassdbView({ prefix: "db", shards: 4 });
    const seen: EntryChange[][] = [];
    view.onChange((c) => seen.push(c));
    const [h1, h2] = [fakeHash("1"), fakeHash("2")];
    view.update("db-00", shard("db-00", [e("ns/1", h1), e("ns/2", h2)]));
    expect(view.published("ns/1")?.hash).toBe(h1);
    expect(view.size).toBe(2);
    expect(view.owners()).toEqual([{ ...owner, releasedAt: undefined }]);
    view.update("db-00", shard("db-00", [e("ns/1", h1)]));
    expect(view.published("ns/2")).toBeUndefined();
    view.update("db-00", undefined);
    expect(view.size).toBe(0);
    expect(seen.map((c) => c.map((x) => x.kind))).toEqual([["added", "added"], ["removed"], ["removed"]]);
  });

  it("ignores shards beyond the configured count and Secrets that are not shards", () => {
    const view = new PassdbView({ prefix: "db", shards: 4 });
    view.update("db-04", shard("db-04", [e("ns/1", fakeHash("1"))]));
    view.update("db-seal-key", shard("db-seal-key", [e("ns/1", fakeHash("1"))]));
    expect(view.size).toBe(0);
    expect(view.owners()).toEqual([]);
  });
});

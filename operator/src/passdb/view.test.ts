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

  it("parses again only the files whose bytes changed, and reports only their entries", () => {
    const view = new PassdbView({ prefix: "db", shards: 4 });
    const seen: EntryChange[][] = [];
    view.onChange((c) => seen.push(c));
    const other = { address: "b@x.io", namespace: "ns", since: "2026-01-02T00:00:00Z" };
    const twoAddresses = (version: string, aHash: string, bHash: string) => ({
      metadata: { name: "db-01", resourceVersion: version },
      data: encodeData(
        Object.fromEntries(
          renderShard(
            [
              { address: "a@x.io", entries: [e("ns/a", aHash)], owner },
              { address: "b@x.io", entries: [e("ns/b", bHash, "b@x.io")], owner: other },
            ],
            1 << 20,
          ).files,
        ),
      ),
    });
    view.update("db-01", twoAddresses("1", fakeHash("a1"), fakeHash("b1")));
    const untouched = view.published("ns/b");
    view.update("db-01", twoAddresses("2", fakeHash("a2"), fakeHash("b1")));
    expect(seen.at(-1)!.map((c) => [c.kind, c.entry.device])).toEqual([["changed", "ns/a"]]);
    expect(view.published("ns/a")?.hash).toBe(fakeHash("a2"));
    expect(view.published("ns/b")).toBe(untouched); // the same object: b's file was not parsed again
    expect(view.publishedSince("ns/a")?.version).toBe("2");
    expect(view.publishedSince("ns/b")?.version).toBe("1"); // its entry is as the first version carried it
    expect(view.owners()).toHaveLength(2);
  });

  it("ignores shards beyond the configured count and Secrets that are not shards", () => {
    const view = new PassdbView({ prefix: "db", shards: 4 });
    view.update("db-04", shard("db-04", [e("ns/1", fakeHash("1"))]));
    view.update("db-seal-key", shard("db-seal-key", [e("ns/1", fakeHash("1"))]));
    expect(view.size).toBe(0);
    expect(view.owners()).toEqual([]);
  });
});

import { describe, expect, it } from "vitest";
import { encodeData } from "../policy/secret.ts";
import { renderShards, type PassdbEntry } from "./format.ts";
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
  it("tracks the published hash per device across shard updates and deletions", () => {
    const view = new PassdbView();
    const seen: EntryChange[][] = [];
    view.onChange((c) => seen.push(c));
    const shard = (entries: PassdbEntry[]) => ({
      metadata: { name: "s" },
      data: encodeData(Object.fromEntries(renderShards(entries, 1).get(0)!)),
    });
    view.update("ns/s", shard([e("ns/1", "h1"), e("ns/2", "h2")]));
    expect(view.published("ns/1")?.hash).toBe("h1");
    expect(view.size).toBe(2);
    view.update("ns/s", shard([e("ns/1", "h1")]));
    expect(view.published("ns/2")).toBeUndefined();
    view.update("ns/s", undefined);
    expect(view.size).toBe(0);
    expect(seen.map((c) => c.map((x) => x.kind))).toEqual([["added", "added"], ["removed"], ["removed"]]);
  });
});

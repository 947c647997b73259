import { describe, expect, it } from "vitest";
import { encodeData } from "../kube/objects.ts";
import { addressKey, renderShard, shardName, type PassdbEntry } from "../passdb/format.ts";
import { fakeHash } from "../policy/fixtures.test-support.ts";
import { desiredFiles, type ShardInput } from "./desired.ts";

const hash = (n: number) => fakeHash(String(n));
const entry = (address: string, device: string, n = 1): PassdbEntry => ({
  address,
  device,
  protocols: ["imap", "smtp"],
  hash: hash(n),
});
const shardCount = 4;
const prefix = "devicepass-passdb";
/** The operator's placement is keyed (the sidecar never knows it): any fixed one will do here. */
const placement = (address: string) => address.length % shardCount;

/** The shard Secrets the operator would write for these entries. */
function shards(entries: PassdbEntry[], version = "7"): ShardInput[] {
  return Array.from({ length: shardCount }, (_, i) => {
    const mine = entries.filter((e) => placement(e.address) === i);
    const addresses = [...new Set(mine.map((e) => e.address))].map((address) => ({
      address,
      entries: mine.filter((e) => e.address === address),
      owner: { address, namespace: "mail", since: "2026-01-01T00:00:00Z" },
    }));
    const { files } = renderShard(addresses, 1 << 20);
    return {
      name: shardName(prefix, i),
      resourceVersion: version,
      data: encodeData(Object.fromEntries(files)),
    };
  });
}

describe("desiredFiles", () => {
  it("is exactly the operator's address files, one per address, and the versions of every shard", () => {
    const entries = [
      entry("alice@example.com", "mail/a"),
      entry("alice@example.com", "mail/b", 2),
      entry("bob@example.com", "mail/c", 3),
    ];
    const desired = desiredFiles(shards(entries), prefix, shardCount);
    expect([...desired.files.keys()].sort()).toEqual([
      addressKey("alice@example.com"),
      addressKey("bob@example.com"),
    ]);
    expect(desired.files.get(addressKey("alice@example.com"))!.entries.map((e) => e.device)).toEqual([
      "mail/a",
      "mail/b",
    ]);
    expect([...desired.versions.keys()]).toEqual([0, 1, 2, 3].map((i) => shardName(prefix, i)));
    expect(desired.problems).toEqual([]);
  });

  it("ignores Secrets that are not one of the shards, such as one left from a larger shard count", () => {
    const alice = entry("alice@example.com", "mail/a");
    const leftover = {
      name: shardName(prefix, 7),
      resourceVersion: "3",
      data: encodeData({ [addressKey(alice.address)]: "x" }),
    };
    const desired = desiredFiles([...shards([alice]), leftover], prefix, shardCount);
    expect(desired.versions.has(leftover.name)).toBe(false);
    expect(desired.problems).toEqual([
      `Secret ${leftover.name} is not one of the ${shardCount} shards; ignored.`,
    ]);
  });

  it("drops keys that are not safe file names, and leaves out a file that two shards carry", () => {
    const alice = entry("alice@example.com", "mail/a");
    const line = `${alice.address}\t${alice.device}\timap\t${alice.hash}\n`;
    const desired = desiredFiles(
      [
        {
          name: shardName(prefix, 0),
          resourceVersion: "1",
          data: encodeData({ "..data": line, ".hidden": line }),
        },
        {
          name: shardName(prefix, 1),
          resourceVersion: "1",
          data: encodeData({ [addressKey(alice.address)]: line }),
        },
        {
          name: shardName(prefix, 2),
          resourceVersion: "1",
          data: encodeData({ [addressKey(alice.address)]: line }),
        },
      ],
      prefix,
      shardCount,
    );
    expect(desired.files.size).toBe(0);
    expect(desired.problems).toHaveLength(3);
  });

  it("keeps only well-formed lines of the address the key names", () => {
    const key = addressKey("alice@example.com");
    const good = `alice@example.com\tmail/a\timap,smtp\t${hash(1)}`;
    const lines = [
      "# devicepass passdb v2",
      good,
      `bob@example.com\tmail/b\timap\t${hash(2)}`, // another address in alice's file
      `alice@example.com\tmail/c\timap\t{PLAIN}secret`, // not argon2id
      `alice@example.com\tmail/d\timap,ftp\t${hash(3)}`, // unknown protocol
      `alice@example.com\tmail/e\t\t${hash(4)}`, // no protocol
      `alice@example.com\tMail/E\timap\t${hash(5)}`, // not a device key
      `alice@example.com\tmail/a\timap\t${hash(6)}`, // the same device twice
      `alice@example.com\tmail/f\timap\t${hash(7)}\textra`, // five fields
      `*@example.com\tmail/g\timap\t${hash(8)}`, // a doveadm wildcard
    ];
    const desired = desiredFiles(
      [{ name: shardName(prefix, 1), resourceVersion: "1", data: encodeData({ [key]: lines.join("\n") }) }],
      prefix,
      shardCount,
    );
    expect(desired.files.get(key)!.entries.map((e) => e.device)).toEqual(["mail/a"]);
    expect(desired.problems).toEqual([
      `Shard ${shardName(prefix, 1)}, key ${key}: 8 lines were not valid entries; dropped.`,
    ]);
  });

  it("has no file for an address whose file holds no valid entry, nor for the ownership records", () => {
    const key = addressKey("alice@example.com");
    const desired = desiredFiles(
      [
        {
          name: shardName(prefix, 0),
          resourceVersion: "1",
          data: encodeData({ [key]: "# nothing\n", owners: "# owners\n" }),
        },
      ],
      prefix,
      shardCount,
    );
    expect(desired.files.size).toBe(0);
  });
});

import { describe, expect, it } from "vitest";
import { addressKey, renderShards, shardName, shardOf, type PassdbEntry } from "../passdb/format.ts";
import { encodeData } from "../policy/secret.ts";
import { desiredFiles, type ShardInput } from "./desired.ts";

const hash = (n: number) =>
  `{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0${n}$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNo${n}`;
const entry = (address: string, device: string, n = 1): PassdbEntry => ({
  address,
  device,
  protocols: ["imap", "smtp"],
  hash: hash(n),
});
const shardCount = 4;
const prefix = "devicepass-passdb";

/** The shard Secrets the operator would write for these entries. */
function shards(entries: PassdbEntry[], version = "7"): ShardInput[] {
  return [...renderShards(entries, shardCount)].map(([i, files]) => ({
    name: shardName(prefix, i),
    resourceVersion: version,
    data: encodeData(Object.fromEntries(files)),
  }));
}

describe("desiredFiles", () => {
  it("is exactly the operator's files, one per address, and the versions of every shard", () => {
    const entries = [
      entry("alice@example.com", "mail/a"),
      entry("alice@example.com", "mail/b", 2),
      entry("bob@example.com", "mail/c", 3),
    ];
    const desired = desiredFiles(shards(entries), prefix, shardCount);
    const rendered = new Map([...renderShards(entries, shardCount).values()].flatMap((files) => [...files]));
    expect(new Map([...desired.files].map(([k, f]) => [k, f.content]))).toEqual(rendered);
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

  it("drops keys that are not safe file names, and files in a shard their address does not belong to", () => {
    const alice = entry("alice@example.com", "mail/a");
    const home = shardOf(alice.address, shardCount);
    const other = (home + 1) % shardCount;
    const line = `${alice.address}\t${alice.device}\timap\t${alice.hash}\n`;
    const desired = desiredFiles(
      [
        {
          name: shardName(prefix, home),
          resourceVersion: "1",
          data: encodeData({ "..data": line, ".hidden": line }),
        },
        {
          name: shardName(prefix, other),
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
      "# devicepass passdb v1",
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
    const index = shardOf("alice@example.com", shardCount);
    const desired = desiredFiles(
      [
        {
          name: shardName(prefix, index),
          resourceVersion: "1",
          data: encodeData({ [key]: lines.join("\n") }),
        },
      ],
      prefix,
      shardCount,
    );
    expect(desired.files.get(key)!.entries.map((e) => e.device)).toEqual(["mail/a"]);
    expect(desired.problems).toEqual([
      `Shard ${shardName(prefix, index)}, key ${key}: 8 lines were not valid entries; dropped.`,
    ]);
  });

  it("has no file for an address whose file holds no valid entry", () => {
    const key = addressKey("alice@example.com");
    const index = shardOf("alice@example.com", shardCount);
    const desired = desiredFiles(
      [{ name: shardName(prefix, index), resourceVersion: "1", data: encodeData({ [key]: "# nothing\n" }) }],
      prefix,
      shardCount,
    );
    expect(desired.files.size).toBe(0);
  });
});

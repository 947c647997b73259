import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fakeHash } from "../policy/fixtures.test-support.ts";
import {
  addressKey,
  entryProblem,
  isValidMailAddress,
  isValidOwnershipRecord,
  ownersKey,
  parseShard,
  renderShard,
  shardIndexOf,
  shardName,
  type PassdbEntry,
  type ShardAddress,
} from "./format.ts";

const entry = (address: string, device: string, hash = fakeHash(device)): PassdbEntry => ({
  address,
  device,
  protocols: ["smtp", "imap"],
  hash,
});
const at = (address: string, entries: PassdbEntry[], since = "2026-01-01T00:00:00Z"): ShardAddress => ({
  address,
  entries,
  owner: { address, namespace: entries[0]?.device.split("/")[0] ?? "ns", since },
});
const big = 10 * 1024 * 1024;

describe("addressKey", () => {
  it("keeps lower-case letters, digits, dots and dashes and escapes the rest", () => {
    expect(addressKey("Alice.Smith-1@Example.com")).toBe("alice.smith-1_40example.com");
    expect(addressKey("a_b+c@x.io")).toBe("a_5fb_2bc_40x.io");
  });

  it("is injective where a naive replacement would not be", () => {
    expect(addressKey("a_40b@x.io")).not.toBe(addressKey("a@b@x.io"));
  });

  it("never equals the owners key (an address key always holds _40)", () => {
    expect(addressKey("owners@x.io")).not.toBe(ownersKey);
  });
});

describe("shard names", () => {
  it("round-trip to their index, and nothing else is a shard", () => {
    expect(shardName("db", 7)).toBe("db-07");
    expect(shardIndexOf("db", "db-07")).toBe(7);
    expect(shardIndexOf("db", "db-123")).toBe(123);
    expect(shardIndexOf("db", "db-seal")).toBeUndefined();
    expect(shardIndexOf("db", "other-07")).toBeUndefined();
  });
});

describe("renderShard", () => {
  it("renders identical bytes for identical state, whatever the order", () => {
    const a = [
      at("b@x.io", [entry("b@x.io", "ns/2")]),
      at("a@x.io", [entry("a@x.io", "ns/1"), entry("a@x.io", "ns/0")]),
    ];
    const b = [a[1]!, a[0]!].map((x) => ({ ...x, entries: [...x.entries].reverse() }));
    expect(renderShard(a, big)).toEqual(renderShard(b, big));
  });

  it("round-trips entries and ownership records, with protocols sorted", () => {
    const addresses = [
      at("a@x.io", [entry("a@x.io", "ns/1"), entry("a@x.io", "ns/0")]),
      at("c@y.io", [entry("c@y.io", "other/9")]),
    ];
    const { files } = renderShard(addresses, big);
    const parsed = parseShard(files);
    expect(parsed.entries).toHaveLength(3);
    expect(parsed.entries).toContainEqual({ ...addresses[0]!.entries[0], protocols: ["imap", "smtp"] });
    expect(parsed.owners).toEqual(addresses.map((a) => ({ ...a.owner, releasedAt: undefined })));
    expect(files.get("a_40x.io")!.split("\n").slice(1, 3)).toEqual([
      `a@x.io\tns/0\timap,smtp\t${fakeHash("ns/0")}`,
      `a@x.io\tns/1\timap,smtp\t${fakeHash("ns/1")}`,
    ]);
  });

  it("keeps ownership records of addresses without devices (a released address stays taken)", () => {
    const released = {
      address: "a@x.io",
      namespace: "ns",
      since: "2026-01-01T00:00:00Z",
      releasedAt: "2026-01-02T00:00:00Z",
    };
    const { files } = renderShard([{ address: "a@x.io", entries: [], owner: released }], big);
    expect([...files.keys()]).toEqual([ownersKey]);
    expect(parseShard(files).owners).toEqual([released]);
  });

  it("leaves out the newest owners' addresses once the budget is spent, never an older one", () => {
    const addresses = Array.from({ length: 10 }, (_, i) =>
      at(`u${i}@x.io`, [entry(`u${i}@x.io`, `ns/d${i}`)], `2026-01-01T00:00:${String(10 + i)}Z`),
    );
    const one = renderShard(addresses.slice(0, 1), big).bytes;
    const { files, leftOut, bytes } = renderShard([...addresses].reverse(), one * 4);
    const kept = parseShard(files).entries.map((e) => e.address);
    expect(kept.length).toBeGreaterThanOrEqual(3);
    expect(bytes).toBeLessThanOrEqual(one * 4);
    // The oldest owners are kept, the newest left out; all ownership records stay.
    expect(new Set(kept)).toEqual(new Set(addresses.slice(0, kept.length).map((a) => a.address)));
    expect(new Set(leftOut)).toEqual(new Set(addresses.slice(kept.length).map((a) => a.address)));
    expect(parseShard(files).owners).toHaveLength(10);
  });

  it("counts ownership records against the budget: empty addresses never push out an older owner's file", () => {
    const older = at("old@x.io", [entry("old@x.io", "a/phone")], "2026-01-01T00:00:00Z");
    // A tenant's many addresses without devices: only ownership records, all newer.
    const empty = Array.from({ length: 500 }, (_, i) => ({
      address: `filler-${i}@x.io`,
      entries: [],
      owner: { address: `filler-${i}@x.io`, namespace: "b", since: "2026-01-02T00:00:00Z" },
    }));
    const budget = 4096;
    const { files, bytes, leftOut } = renderShard([...empty, older], budget);
    const actual = [...files].reduce((n, [key, text]) => n + key.length + Buffer.byteLength(text), 0);
    expect(bytes).toBe(actual);
    expect(bytes).toBeLessThanOrEqual(budget);
    const parsed = parseShard(files);
    expect(parsed.entries.map((e) => e.address)).toEqual(["old@x.io"]);
    expect(parsed.owners.map((o) => o.address)).toContain("old@x.io");
    expect(leftOut).toEqual([]);
  });

  it("fits its share of 50,000 devices of 20 per address within budget, in each of 64 shards", () => {
    // 2,500 addresses over 64 shards: at most 40 addresses, 800 devices, in the fullest shard.
    const hash = fakeHash("one");
    const addresses = Array.from({ length: Math.ceil(2500 / 64) }, (_, a) => {
      const address = `user${a}@example.com`;
      const entries = Array.from({ length: 20 }, (_, i) =>
        entry(address, `tenant-${a % 100}/device-${a}-${i}`, hash),
      );
      return at(address, entries);
    });
    const { bytes, leftOut } = renderShard(addresses, 768 * 1024);
    expect(leftOut).toEqual([]);
    expect(bytes).toBeLessThan(768 * 1024);
  });
});

describe("validation", () => {
  const good = entry("a@x.io", "ns/phone");

  it("accepts well-formed entries only", () => {
    expect(entryProblem(good)).toBeUndefined();
    expect(entryProblem({ ...good, address: "A@x.io" })).toBe("address");
    expect(entryProblem({ ...good, address: "*@x.io" })).toBe("address");
    expect(entryProblem({ ...good, address: "a?b@x.io" })).toBe("address");
    expect(entryProblem({ ...good, address: "a@x.io\tns/x" })).toBe("address");
    expect(entryProblem({ ...good, device: "ns/phone\nb@x.io" })).toBe("device");
    expect(entryProblem({ ...good, device: "phone" })).toBe("device");
    expect(entryProblem({ ...good, protocols: [] })).toBe("protocols");
    expect(entryProblem({ ...good, protocols: ["imap", "imap"] })).toBe("protocols");
    expect(entryProblem({ ...good, protocols: ["sieve" as "imap"] })).toBe("protocols");
    expect(entryProblem({ ...good, hash: "{PLAIN}secret" })).toBe("hash");
    expect(entryProblem({ ...good, hash: `${good.hash}\nb@x.io\tns/y\timap\t{PLAIN}x` })).toBe("hash");
  });

  it("skips malformed and foreign lines when parsing: a file speaks only for its own address", () => {
    const line = `a@x.io\tns/1\timap\t${good.hash}`;
    const parsed = parseShard({
      "a_40x.io": `# header\ngarbage\n${line}\nb@x.io\tns/2\timap\t${good.hash}\n`,
      "b_40x.io": `b@x.io\tns/3\timap\t{PLAIN}pw\n`,
    });
    expect(parsed.entries).toEqual([
      { address: "a@x.io", device: "ns/1", protocols: ["imap"], hash: good.hash },
    ]);
  });

  it("never renders a TAB, newline or wildcard from random bytes in any field (fuzz)", () => {
    const text = () => randomBytes(1 + Math.floor(Math.random() * 40)).toString("latin1");
    const problems: string[] = [];
    const check = (ok: boolean, what: string) => void (ok || problems.push(what));
    for (let i = 0; i < 3000; i++) {
      const fields = [text(), text(), text(), text()];
      const pick = i % 5;
      const e: PassdbEntry = {
        address: pick === 0 ? fields[0]! : "a@x.io",
        device: pick === 1 ? fields[1]! : "ns/d",
        protocols: pick === 2 ? (fields[2]!.split(",") as PassdbEntry["protocols"]) : ["imap"],
        hash: pick === 3 ? fields[3]! : pick === 4 ? `${good.hash}${fields[3]!}` : good.hash,
      };
      const owner = {
        address: e.address,
        namespace: pick === 1 ? fields[1]! : "ns",
        since: "2026-01-01T00:00:00Z",
      };
      const { files } = renderShard([{ address: e.address, entries: [e], owner }], big);
      for (const [key, file] of files) {
        check(/^[-._a-zA-Z0-9]{1,253}$/.test(key), `key ${JSON.stringify(key)}`);
        for (const row of file.split("\n").filter((l) => l && !l.startsWith("#"))) {
          check(row.split("\t").length === 4, `columns of ${JSON.stringify(row)}`);
          check(!/[*?\r\0]/.test(row), `characters of ${JSON.stringify(row)}`);
        }
      }
      const parsed = parseShard(files);
      for (const p of parsed.entries) check(entryProblem(p) === undefined, `parsed ${JSON.stringify(p)}`);
      // What went in is either rendered exactly or not at all.
      const want = entryProblem(e) === undefined ? [{ ...e, protocols: [...e.protocols].sort() }] : [];
      check(JSON.stringify(parsed.entries) === JSON.stringify(want), `entry ${JSON.stringify(e)}`);
    }
    expect(problems).toEqual([]);
  });
});

describe("renderShard and parseShard, fuzzed with random bytes in every field", () => {
  // A seeded generator, so that a finding names the seed that reproduces it.
  const seed = randomBytes(4).readUInt32BE(0) || 1;
  let state = seed;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  /** Random bytes, often mixed with the characters that matter here: TAB, newline, wildcards, @. */
  const noise = (max = 40) =>
    Array.from({ length: Math.floor(next() * max) }, () =>
      next() < 0.3
        ? pick(["\t", "\n", "\r", "*", "?", "%", "@", "/", ",", "-", "#", "\0", "_40"])
        : String.fromCharCode(Math.floor(next() * 256)),
    ).join("");
  /** A well-formed value, or the same with noise inside, or pure noise. */
  const field = (good: string) => {
    const r = next();
    if (r < 0.5) return good;
    if (r < 0.8) {
      const at = Math.floor(next() * (good.length + 1));
      return good.slice(0, at) + noise(6) + good.slice(at);
    }
    return noise();
  };
  const rounds = 500;
  const good = entry("a@x.io", "ns/d");
  const timestamp = "2026-01-01T00:00:00Z";
  const problems: string[] = [];
  const check = (ok: boolean, what: string) => void (ok || problems.push(`seed ${seed}: ${what}`));

  it("renders only well-formed rows and records, within budget, and parses back only well-formed ones", () => {
    problems.length = 0;
    for (let i = 0; i < rounds; i++) {
      const addresses: ShardAddress[] = Array.from({ length: 1 + Math.floor(next() * 4) }, (_, a) => {
        const address = field(`u${a}@x.io`);
        const entries = Array.from({ length: Math.floor(next() * 3) }, (_, d) => ({
          address: next() < 0.8 ? address : field(`u${a}@x.io`),
          device: field(`ns/d${a}-${d}`),
          protocols: (next() < 0.7
            ? ["imap", "smtp"]
            : field("imap,pop3").split(",")) as PassdbEntry["protocols"],
          hash: field(fakeHash(`${a}-${d}`)),
        }));
        const owner =
          next() < 0.2
            ? undefined
            : {
                address: next() < 0.8 ? address : field(address),
                namespace: field("ns"),
                since: field(timestamp),
                releasedAt: next() < 0.7 ? undefined : field(timestamp),
              };
        return { address, entries, owner };
      });
      const budget = next() < 0.5 ? big : 200 + Math.floor(next() * 2000);
      const { files, bytes, leftOut } = renderShard(addresses, budget);
      const where = `round ${i}`;

      const actual = [...files].reduce((n, [key, text]) => n + key.length + Buffer.byteLength(text), 0);
      check(bytes === actual, `${where}: ${bytes} bytes reported, ${actual} written`);
      check(
        budget !== big || leftOut.length === 0,
        `${where}: left out ${JSON.stringify(leftOut)} with room`,
      );
      check(files.has(ownersKey), `${where}: no owners key`);
      for (const [key, text] of files) {
        check(/^[-._a-zA-Z0-9]{1,253}$/.test(key), `${where}: key ${JSON.stringify(key)}`);
        const rows = text.split("\n");
        check(rows.at(-1) === "", `${where}: ${JSON.stringify(key)} does not end with a newline`);
        for (const row of rows.filter((r) => r !== "" && !r.startsWith("#"))) {
          check(row.split("\t").length === 4, `${where}: columns of ${JSON.stringify(row)}`);
          check(!/[*?%\r\0]/.test(row), `${where}: characters of ${JSON.stringify(row)}`);
        }
      }
      // Everything parsed back is well-formed, in the file of its own address, and was put in.
      const parsed = parseShard(files);
      for (const e of parsed.entries) {
        check(entryProblem(e) === undefined, `${where}: parsed ${JSON.stringify(e)}`);
        check(
          files.get(addressKey(e.address))?.includes(`${e.address}\t${e.device}\t`) === true,
          `${where}: ${JSON.stringify(e)} is not in its own address's file`,
        );
        const source = addresses.find((a) => a.address === e.address);
        check(
          source?.entries.some(
            (s) => s.device === e.device && s.hash === e.hash && s.address === e.address,
          ) === true,
          `${where}: ${JSON.stringify(e)} was never put in`,
        );
      }
      for (const o of parsed.owners) check(isValidOwnershipRecord(o), `${where}: owner ${JSON.stringify(o)}`);
      // A well-formed entry of its own address is rendered exactly once, unless the budget left it out.
      for (const a of addresses) {
        if (!isValidMailAddress(a.address) || leftOut.includes(a.address)) continue;
        for (const e of a.entries) {
          if (entryProblem(e) !== undefined || e.address !== a.address) continue;
          const same = (x: PassdbEntry) =>
            x.device === e.device && x.hash === e.hash && x.address === a.address;
          check(
            parsed.entries.filter(same).length === a.entries.filter(same).length,
            `${where}: ${JSON.stringify(e)} rendered ${parsed.entries.filter(same).length} times`,
          );
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("parses any bytes under any key into well-formed entries of the key's own address only", () => {
    problems.length = 0;
    const line = (address: string) =>
      [field(address), field("ns/d"), field("imap"), field(good.hash)].join(pick(["\t", "\t", " ", "\t\t"]));
    for (let i = 0; i < rounds; i++) {
      const data: Record<string, string> = {};
      for (let k = 0; k < 1 + Math.floor(next() * 3); k++) {
        const address = pick(["a@x.io", "b@x.io", field("c@x.io")]);
        const key = next() < 0.2 ? pick([ownersKey, noise(10), "..data"]) : addressKey(address);
        data[key] = Array.from({ length: Math.floor(next() * 4) }, () =>
          next() < 0.3
            ? noise()
            : key === ownersKey
              ? [field("a@x.io"), field("ns"), field(timestamp), field("-")].join("\t")
              : line(pick([address, "a@x.io"])),
        ).join(pick(["\n", "\r\n", "\n\n"]));
      }
      const parsed = parseShard(data);
      for (const e of parsed.entries) {
        check(entryProblem(e) === undefined, `round ${i}: parsed ${JSON.stringify(e)}`);
        check(
          data[addressKey(e.address)] !== undefined,
          `round ${i}: an entry of ${e.address} from another key`,
        );
      }
      for (const o of parsed.owners)
        check(isValidOwnershipRecord(o), `round ${i}: owner ${JSON.stringify(o)}`);
    }
    expect(problems).toEqual([]);
  });
});

// The mail server's password database: one file per mail address, spread over a fixed number
// of shard Secrets so that 50,000 devices fit (a Secret holds at most 1 MiB) and a login reads
// only the file of its own address. Rendering is deterministic: equal state, equal bytes.
import type { MailProtocol } from "../api/schemas.ts";

export const formatHeader = "# devicepass passdb v1: address<TAB>namespace/device<TAB>protocols<TAB>hash";

export interface PassdbEntry {
  /** The mail address, lower-case. */
  address: string;
  /** `namespace/name` of the MailDevice. */
  device: string;
  protocols: readonly MailProtocol[];
  /** `{ARGON2ID}$argon2id$…` */
  hash: string;
}

/** Kubernetes Secret keys allow only [-._a-zA-Z0-9] and at most 253 characters. */
export const maxKeyLength = 253;

/**
 * The Secret key (and so the file name in a mounted volume) of an address: lower-case, each byte
 * outside [a-z0-9.-] written as `_` and two hex digits. Injective, and cheap to compute in Lua.
 */
export function addressKey(address: string): string {
  let key = "";
  for (const byte of Buffer.from(address.toLowerCase(), "utf8")) {
    const c = String.fromCharCode(byte);
    key += /[a-z0-9.-]/.test(c) ? c : `_${byte.toString(16).padStart(2, "0")}`;
  }
  return key;
}

export function addressFitsKey(address: string): boolean {
  return addressKey(address).length <= maxKeyLength;
}

/** FNV-1a, 32 bit: a stable, well-spread shard choice that any language can reproduce. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function shardOf(address: string, shardCount: number): number {
  return fnv1a32(address.toLowerCase()) % shardCount;
}

export function shardName(prefix: string, index: number): string {
  return `${prefix}-${String(index).padStart(2, "0")}`;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The file of one address: a header line, then one line per device, sorted by device. */
export function renderAddressFile(entries: readonly PassdbEntry[]): string {
  const lines = [...entries]
    .sort((a, b) => compare(a.device, b.device))
    .map((e) => [e.address, e.device, [...e.protocols].sort().join(","), e.hash].join("\t"));
  return [formatHeader, ...lines, ""].join("\n");
}

/** Every shard's data (key → file) for a set of entries; shards without entries are empty. */
export function renderShards(
  entries: Iterable<PassdbEntry>,
  shardCount: number,
): Map<number, Map<string, string>> {
  const byAddress = new Map<string, PassdbEntry[]>();
  for (const entry of entries) {
    const list = byAddress.get(entry.address);
    if (list) list.push(entry);
    else byAddress.set(entry.address, [entry]);
  }
  const shards = new Map<number, Map<string, string>>();
  for (let i = 0; i < shardCount; i++) shards.set(i, new Map());
  for (const address of [...byAddress.keys()].sort(compare)) {
    shards
      .get(shardOf(address, shardCount))!
      .set(addressKey(address), renderAddressFile(byAddress.get(address)!));
  }
  return shards;
}

const protocolNames = new Set<string>(["imap", "pop3", "smtp"]);

/** Parses one address file; lines that are not well-formed entries are skipped. */
export function parseAddressFile(text: string): PassdbEntry[] {
  const entries: PassdbEntry[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [address, device, protocols, hash, ...rest] = line.split("\t");
    if (!address || !device || protocols === undefined || !hash || rest.length > 0) continue;
    const list = protocols.split(",").filter((p) => protocolNames.has(p)) as MailProtocol[];
    entries.push({ address, device, protocols: list, hash });
  }
  return entries;
}

/** Every entry of a shard's decoded data. */
export function parseShard(data: ReadonlyMap<string, string> | Record<string, string>): PassdbEntry[] {
  const files = data instanceof Map ? [...data.values()] : Object.values(data);
  return files.flatMap(parseAddressFile);
}

// The mail server's password database: one file per mail address, spread over a fixed number
// of shard Secrets so that 50,000 devices fit (a Secret holds at most 1 MiB) and a login reads
// only the file of its own address. Every field is checked as it is rendered and as it is parsed
// back: no value carries a TAB, a newline or a doveadm wildcard into the file, and only argon2id
// hashes appear. Each shard also holds the ownership records of its addresses (key `owners`).
// Rendering is deterministic: equal state, equal bytes.
import { mailAddressRegExp, mailProtocols, type MailProtocol } from "../api/schemas.ts";
import type { OwnershipRecord } from "../policy/ownership.ts";

export const formatHeader = "# devicepass passdb v2: address<TAB>namespace/device<TAB>protocols<TAB>hash";
export const ownersHeader = "# devicepass owners v1: address<TAB>namespace<TAB>since<TAB>released-at or -";
/** The shard key of the ownership records; never an address key (those always hold `_40`, the @). */
export const ownersKey = "owners";

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

/** What one shard's data may total (keys and files, bytes): well under the 1 MiB Secret limit. */
export const defaultShardBudgetBytes = 768 * 1024;

/**
 * The Secret key (and so the file name in a mounted volume) of an address: lower-case, each byte
 * outside [a-z0-9.-] written as `_` and two hex digits. Injective, and cheap to compute in Lua.
 */
export function addressKey(address: string): string {
  let key = "";
  for (const byte of Buffer.from(address.toLowerCase(), "utf8")) {
    const plain =
      (byte >= 0x61 && byte <= 0x7a) /* a-z */ ||
      (byte >= 0x30 && byte <= 0x39) /* 0-9 */ ||
      byte === 0x2e /* . */ ||
      byte === 0x2d; /* - */
    key += plain ? String.fromCharCode(byte) : `_${byte.toString(16).padStart(2, "0")}`;
  }
  return key;
}

export function addressFitsKey(address: string): boolean {
  return addressKey(address).length <= maxKeyLength;
}

export function shardName(prefix: string, index: number): string {
  return `${prefix}-${String(index).padStart(2, "0")}`;
}

/** The index of a shard Secret's name under `prefix`, if it is one. */
export function shardIndexOf(prefix: string, name: string): number | undefined {
  const match = /^(\d{2,3})$/.exec(name.startsWith(`${prefix}-`) ? name.slice(prefix.length + 1) : "");
  return match ? Number(match[1]) : undefined;
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const dnsSubdomain = /^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$/;
const protocolNames = new Set<string>(mailProtocols);
/** An argon2id hash in Dovecot's notation: a 16-byte salt, a 32-byte output, nothing else. */
const argon2idShape =
  /^\{ARGON2ID\}\$argon2id\$v=19\$m=\d{1,7},t=\d{1,3},p=\d{1,2}\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/;
const timestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

export function isValidMailAddress(address: string): boolean {
  return (
    address.length <= 254 &&
    address === address.toLowerCase() &&
    mailAddressRegExp.test(address) &&
    addressFitsKey(address)
  );
}

export function isValidDeviceKey(device: string): boolean {
  const [namespace, name, ...rest] = device.split("/");
  return rest.length === 0 && dnsLabel.test(namespace ?? "") && dnsSubdomain.test(name ?? "");
}

/** Why an entry may not be rendered, or undefined when every field is well-formed. */
export function entryProblem(entry: PassdbEntry): string | undefined {
  if (!isValidMailAddress(entry.address)) return "address";
  if (!isValidDeviceKey(entry.device)) return "device";
  const protocols = entry.protocols as readonly string[];
  if (protocols.length === 0 || new Set(protocols).size !== protocols.length) return "protocols";
  if (!protocols.every((p) => protocolNames.has(p))) return "protocols";
  if (!argon2idShape.test(entry.hash)) return "hash";
  return undefined;
}

export function isValidOwnershipRecord(record: OwnershipRecord): boolean {
  return (
    isValidMailAddress(record.address) &&
    dnsLabel.test(record.namespace) &&
    timestamp.test(record.since) &&
    (record.releasedAt === undefined || timestamp.test(record.releasedAt))
  );
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The file of one address: a header line, then one line per device, sorted by device. */
export function renderAddressFile(entries: readonly PassdbEntry[]): string {
  const lines = entries
    .filter((e) => entryProblem(e) === undefined)
    .sort((a, b) => compare(a.device, b.device))
    .map((e) => [e.address, e.device, [...e.protocols].sort().join(","), e.hash].join("\t"));
  return [formatHeader, ...lines, ""].join("\n");
}

export function renderOwners(records: readonly OwnershipRecord[]): string {
  const lines = records
    .filter(isValidOwnershipRecord)
    .sort((a, b) => compare(a.address, b.address))
    .map((r) => [r.address, r.namespace, r.since, r.releasedAt ?? "-"].join("\t"));
  return [ownersHeader, ...lines, ""].join("\n");
}

export interface ShardAddress {
  address: string;
  entries: readonly PassdbEntry[];
  owner: OwnershipRecord | undefined;
}

/** One address as a shard holds it: its file (undefined without entries) and its ownership record. */
export interface RenderedAddress {
  address: string;
  owner: OwnershipRecord | undefined;
  /** The Secret key of its file. */
  key: string;
  /** The file's text; undefined without entries (or where a cache keeps it in another form). */
  file: string | undefined;
  /** Bytes the file takes in the shard, key included; 0: the address has no file. */
  fileBytes: number;
  entries: number;
  /** A mail address the database may hold (checked once here, not at every layout). */
  valid: boolean;
  /** Bytes its ownership record takes in the owners file; 0 without a well-formed record. */
  recordBytes: number;
}

/** Renders one address of a shard: a file of the entries that belong to it, if it has any. */
export function renderAddress(
  address: string,
  entries: readonly PassdbEntry[],
  owner: OwnershipRecord | undefined,
): RenderedAddress {
  const key = addressKey(address);
  const file =
    entries.length > 0 ? renderAddressFile(entries.filter((e) => e.address === address)) : undefined;
  const record = owner && isValidOwnershipRecord(owner) ? owner : undefined;
  return {
    address,
    owner,
    key,
    file,
    fileBytes: file === undefined ? 0 : key.length + Buffer.byteLength(file),
    entries: entries.length,
    valid: isValidMailAddress(address),
    recordBytes: record ? Buffer.byteLength(renderOwners([record])) - emptyOwnersBytes : 0,
  };
}

const emptyOwnersBytes = Buffer.byteLength(renderOwners([]));

export interface ShardLayout {
  /** The addresses whose files are in the shard, sorted by key. */
  included: RenderedAddress[];
  /** The text of the ownership records' file (key `owners`). */
  owners: string;
  bytes: number;
  /** Addresses whose file did not fit the budget: left out, the older owners kept. */
  leftOut: string[];
}

/**
 * Which addresses' files a shard holds, and its ownership records: oldest owner first, as long as
 * they fit `budgetBytes`. A file that does not fit is left out whole (its ownership record stays if
 * that fits), so a tenant that keeps adding addresses can only ever push out its own newest ones,
 * never an older address or a revocation. Ownership records count against the budget too: a
 * tenant's many addresses without devices must not crowd out an older owner's file.
 */
export function layoutShard(addresses: readonly RenderedAddress[], budgetBytes: number): ShardLayout {
  const included: RenderedAddress[] = [];
  const owners: OwnershipRecord[] = [];
  let bytes = ownersKey.length + emptyOwnersBytes;
  const leftOut: string[] = [];
  const ordered = addresses
    .filter((a) => (a.entries > 0 || a.owner !== undefined) && a.valid)
    .sort((a, b) => compare(a.owner?.since ?? "~", b.owner?.since ?? "~") || compare(a.address, b.address));
  for (const rendered of ordered) {
    const recordSize = rendered.recordBytes;
    const fits = (size: number) => bytes + size <= budgetBytes;
    if (rendered.fileBytes > 0 && fits(recordSize + rendered.fileBytes)) {
      included.push(rendered);
      bytes += rendered.fileBytes;
    } else if (rendered.fileBytes > 0) leftOut.push(rendered.address);
    if (recordSize > 0 && fits(recordSize)) {
      owners.push(rendered.owner!);
      bytes += recordSize;
    }
  }
  return {
    included: included.sort((a, b) => compare(a.key, b.key)),
    owners: renderOwners(owners),
    bytes,
    leftOut,
  };
}

export interface RenderedShard {
  /** Secret key → file text. */
  files: Map<string, string>;
  bytes: number;
  /** Addresses whose file did not fit the budget: left out, the older owners kept. */
  leftOut: string[];
}

/** One shard's data, rendered whole (see layoutShard): deterministic, equal state gives equal bytes. */
export function renderShard(addresses: readonly ShardAddress[], budgetBytes: number): RenderedShard {
  const layout = layoutShard(
    addresses.map((a) => renderAddress(a.address, a.entries, a.owner)),
    budgetBytes,
  );
  const files = new Map<string, string>(layout.included.map((a) => [a.key, a.file!]));
  files.set(ownersKey, layout.owners);
  return {
    files: new Map([...files].sort(([a], [b]) => compare(a, b))),
    bytes: layout.bytes,
    leftOut: layout.leftOut,
  };
}

/**
 * The lines of a file and their TAB-separated fields, each field a string of its own: a substring
 * of a larger text keeps that whole text alive in V8 (a sliced string), and a cache keyed by a
 * device name would then hold on to every version of every file it was first read from.
 */
function* fieldsOfLines(file: string | Buffer): Generator<string[]> {
  const bytes = typeof file === "string" ? Buffer.from(file, "utf8") : file;
  for (let start = 0; start < bytes.length;) {
    const newline = bytes.indexOf(0x0a, start);
    const end = newline < 0 ? bytes.length : newline;
    if (end > start && bytes[start] !== 0x23 /* # */) {
      const fields: string[] = [];
      for (let from = start; ;) {
        const tab = bytes.indexOf(0x09, from);
        const to = tab < 0 || tab > end ? end : tab;
        fields.push(bytes.toString("utf8", from, to));
        if (to === end) break;
        from = to + 1;
      }
      yield fields;
    }
    start = end + 1;
  }
}

/** Parses one address file; lines that are not well-formed entries of `address` are skipped. */
export function parseAddressFile(file: string | Buffer, address?: string): PassdbEntry[] {
  const entries: PassdbEntry[] = [];
  for (const [lineAddress, device, protocols, hash, ...rest] of fieldsOfLines(file)) {
    if (lineAddress === undefined || device === undefined || protocols === undefined || hash === undefined)
      continue;
    if (rest.length > 0 || (address !== undefined && lineAddress !== address)) continue;
    const entry: PassdbEntry = {
      address: lineAddress,
      device,
      protocols: protocols.split(",") as MailProtocol[],
      hash,
    };
    if (entryProblem(entry) === undefined) entries.push(entry);
  }
  return entries;
}

export function parseOwners(file: string | Buffer): OwnershipRecord[] {
  const records: OwnershipRecord[] = [];
  for (const [address, namespace, since, releasedAt, ...rest] of fieldsOfLines(file)) {
    if (address === undefined || namespace === undefined || since === undefined || releasedAt === undefined)
      continue;
    if (rest.length > 0) continue;
    const record = { address, namespace, since, releasedAt: releasedAt === "-" ? undefined : releasedAt };
    if (isValidOwnershipRecord(record)) records.push(record);
  }
  return records;
}

/**
 * The entries of one shard file (decoded), if it is an address file: an entry counts only in the
 * file of its own address, so a file cannot speak for another address.
 */
export function parseShardFile(key: string, file: string | Buffer): PassdbEntry[] {
  return parseAddressFile(file).filter((entry) => addressKey(entry.address) === key);
}

/** Every entry and ownership record of a shard's decoded data. */
export function parseShard(data: Map<string, string> | Record<string, string>): {
  entries: PassdbEntry[];
  owners: OwnershipRecord[];
} {
  const files: [string, string][] = data instanceof Map ? [...data.entries()] : Object.entries(data);
  const entries: PassdbEntry[] = [];
  let owners: OwnershipRecord[] = [];
  for (const [key, text] of files) {
    if (key === ownersKey) owners = parseOwners(text);
    else entries.push(...parseShardFile(key, text));
  }
  return { entries, owners };
}

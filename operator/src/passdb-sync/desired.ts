// What the password database folder must hold, from the shard Secrets passdb-sync has seen: pure,
// and strict. A shard Secret is input (it is read back from the API server): only the shards the
// operator writes count, each key must be a safe file name holding the address whose key it is in
// the shard that address belongs to, and each line must be a well-formed entry; the rest is dropped.
import { mailProtocols, type MailProtocol } from "../api/schemas.ts";
import { dovecotSchemePrefix } from "../credentials/password.ts";
import { addressKey, renderAddressFile, shardName, shardOf, type PassdbEntry } from "../passdb/format.ts";
import { deviceKeyPattern } from "../passdb/sync-report.ts";
import { isSafeFileName } from "./files.ts";

export interface ShardInput {
  name: string;
  resourceVersion: string;
  /** The Secret's data: key → base64. */
  data: Record<string, string> | undefined;
}

export interface DesiredFile {
  content: string;
  entries: PassdbEntry[];
  /** The shard Secret it came from. */
  shard: string;
}

export interface Desired {
  /** File name (the address key) → what the file must hold. */
  files: Map<string, DesiredFile>;
  /** Shard name → the resourceVersion these files reflect. */
  versions: Map<string, string>;
  /** What was dropped, and why (names and counts only: never a hash). */
  problems: string[];
}

const protocolNames = new Set<string>(mailProtocols);
/** A lower-case mail address without whitespace, control characters or doveadm wildcards. */
const addressPattern = /^[a-z0-9!#$%&'+/=^_`{|}~.-]+@[a-z0-9.-]+$/;
const hashPattern = new RegExp(
  `^${dovecotSchemePrefix.replace(/[{}]/g, "\\$&")}\\$argon2id\\$v=19\\$m=\\d{1,7},t=\\d{1,4},p=\\d{1,3}\\$[A-Za-z0-9+/]{8,128}\\$[A-Za-z0-9+/]{16,256}$`,
);

/** One line of an address file, if it is a well-formed entry of address `address`. */
function parseLine(line: string, address: string | undefined): PassdbEntry | undefined {
  const fields = line.split("\t");
  if (fields.length !== 4) return undefined;
  const [entryAddress, device, protocolList, hash] = fields as [string, string, string, string];
  if (!addressPattern.test(entryAddress) || entryAddress.length > 254) return undefined;
  if (address !== undefined && entryAddress !== address) return undefined;
  if (!deviceKeyPattern.test(device) || !hashPattern.test(hash)) return undefined;
  const protocols = protocolList.split(",");
  if (protocols.length === 0 || protocols.some((p) => !protocolNames.has(p))) return undefined;
  if (new Set(protocols).size !== protocols.length) return undefined;
  return { address: entryAddress, device, protocols: protocols as MailProtocol[], hash };
}

/** The valid entries of one file of shard `index`, all of the one address that the key names. */
export function validEntries(
  key: string,
  text: string,
  index: number,
  shardCount: number,
): { entries: PassdbEntry[]; dropped: number } {
  const entries: PassdbEntry[] = [];
  let dropped = 0;
  let address: string | undefined;
  const devices = new Set<string>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const entry = parseLine(line, address);
    if (
      !entry ||
      devices.has(entry.device) ||
      addressKey(entry.address) !== key ||
      shardOf(entry.address, shardCount) !== index
    ) {
      dropped++;
      continue;
    }
    address = entry.address;
    devices.add(entry.device);
    entries.push(entry);
  }
  return { entries, dropped };
}

/**
 * The folder's desired content from the shard Secrets seen: `<prefix>-00` … `<prefix>-(count-1)`
 * only (a Secret of another name, such as a shard left from a larger count, never reaches Dovecot).
 */
export function desiredFiles(shards: Iterable<ShardInput>, prefix: string, shardCount: number): Desired {
  const indexOf = new Map<string, number>();
  for (let i = 0; i < shardCount; i++) indexOf.set(shardName(prefix, i), i);
  const files = new Map<string, DesiredFile>();
  const versions = new Map<string, string>();
  const problems: string[] = [];
  for (const shard of [...shards].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const index = indexOf.get(shard.name);
    if (index === undefined) {
      problems.push(`Secret ${shard.name} is not one of the ${shardCount} shards; ignored.`);
      continue;
    }
    versions.set(shard.name, shard.resourceVersion);
    for (const [key, base64] of Object.entries(shard.data ?? {})) {
      if (!isSafeFileName(key)) {
        problems.push(`Shard ${shard.name} has a key that is not a safe file name; ignored.`);
        continue;
      }
      const { entries, dropped } = validEntries(
        key,
        Buffer.from(base64, "base64").toString("utf8"),
        index,
        shardCount,
      );
      if (dropped > 0)
        problems.push(`Shard ${shard.name}, key ${key}: ${dropped} lines were not valid entries; dropped.`);
      if (entries.length === 0) continue;
      files.set(key, { content: renderAddressFile(entries), entries, shard: shard.name });
    }
  }
  return { files, versions, problems };
}

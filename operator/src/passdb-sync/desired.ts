// What the password database folder must hold, from the shard Secrets passdb-sync has seen: pure,
// and strict. A shard Secret is input (it is read back from the API server): only the shards the
// operator writes count, each key must be a safe file name holding the address whose key it is,
// each line a well-formed entry (format.ts), and no key may come from two shards (the operator
// places each address in one; the placement is keyed, so the sidecar cannot tell which is right:
// such a file is left out, failing closed); the rest is dropped.
import {
  addressKey,
  ownersKey,
  parseAddressFile,
  renderAddressFile,
  shardName,
  type PassdbEntry,
} from "../passdb/format.ts";
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

/** The valid entries of one file, all of the one address that the key names (format.ts's checks). */
export function validEntries(key: string, text: string): { entries: PassdbEntry[]; dropped: number } {
  const lines = text.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
  const parsed = parseAddressFile(text);
  const address = parsed[0]?.address;
  const devices = new Set<string>();
  const entries: PassdbEntry[] = [];
  for (const entry of parsed) {
    if (entry.address !== address || addressKey(entry.address) !== key || devices.has(entry.device)) continue;
    devices.add(entry.device);
    entries.push(entry);
  }
  return { entries, dropped: lines.length - entries.length };
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
  const twice = new Set<string>();
  for (const shard of [...shards].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const index = indexOf.get(shard.name);
    if (index === undefined) {
      problems.push(`Secret ${shard.name} is not one of the ${shardCount} shards; ignored.`);
      continue;
    }
    versions.set(shard.name, shard.resourceVersion);
    for (const [key, base64] of Object.entries(shard.data ?? {})) {
      if (key === ownersKey) continue; // ownership records: the operator's, not Dovecot's
      if (!isSafeFileName(key)) {
        problems.push(`Shard ${shard.name} has a key that is not a safe file name; ignored.`);
        continue;
      }
      const { entries, dropped } = validEntries(key, Buffer.from(base64, "base64").toString("utf8"));
      if (dropped > 0)
        problems.push(`Shard ${shard.name}, key ${key}: ${dropped} lines were not valid entries; dropped.`);
      if (entries.length === 0) continue;
      if (files.has(key) || twice.has(key)) {
        problems.push(
          `Key ${key} is in shards ${files.get(key)?.shard ?? "several"} and ${shard.name}; left out.`,
        );
        files.delete(key);
        twice.add(key);
        continue;
      }
      files.set(key, { content: renderAddressFile(entries), entries, shard: shard.name });
    }
  }
  return { files, versions, problems };
}

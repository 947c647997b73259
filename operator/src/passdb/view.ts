// What the password database holds now, read from its shard Secrets: the hash published for
// each device and the ownership records. Tells listeners which devices' entries changed, so they
// can react at once (mark a device Ready, cut the sessions of a revoked password). Shards beyond
// the configured count are not part of the database, whatever they hold. A shard's new version
// costs only its changed files: each file (one address) is decoded and parsed again only when its
// bytes changed, so a write's echo costs what the write changed, not what the shard holds.
import type { SecretObject } from "../kube/objects.ts";
import type { OwnershipRecord } from "../policy/ownership.ts";
import { StringInterner } from "../runtime/intern.ts";
import { ownersKey, parseOwners, parseShardFile, shardIndexOf, type PassdbEntry } from "./format.ts";

/** What the view reads of a shard Secret. */
export type ShardVersion = Pick<SecretObject, "data"> & {
  metadata: { name: string; resourceVersion?: string | undefined };
};

export interface EntryChange {
  kind: "added" | "changed" | "removed";
  /** The entry now, or the removed one. */
  entry: PassdbEntry;
}

/** One file of a shard as last read: its Secret data value (base64) and what it parsed to. */
interface ShardFile {
  encoded: string;
  entries: PassdbEntry[];
}

interface ShardContent {
  files: Map<string, ShardFile>;
  owners: OwnershipRecord[];
  /** The owners file's data value, to skip parsing it again when unchanged. */
  ownersEncoded: string | undefined;
}

const emptyShard: ShardContent = { files: new Map(), owners: [], ownersEncoded: undefined };
const decode = (encoded: string) => Buffer.from(encoded, "base64");

export class PassdbView {
  private readonly byDevice = new Map<string, PassdbEntry>();
  /** The shard, and its version, that first carried each device's entry as it is now. */
  private readonly since = new Map<string, { shard: string; version: string }>();
  private readonly byShard = new Map<number, ShardContent>();
  private readonly listeners: ((changes: EntryChange[]) => void)[] = [];
  private readonly prefix: string;
  private readonly shardCount: number;
  /** An address's entries share its address string, and entries with equal protocols one list. */
  private readonly interner: StringInterner;
  private readonly protocolLists = new Map<string, PassdbEntry["protocols"]>();

  constructor(options: { prefix: string; shards: number; interner?: StringInterner }) {
    this.prefix = options.prefix;
    this.shardCount = options.shards;
    this.interner = options.interner ?? new StringInterner();
  }

  private shared(entry: PassdbEntry): PassdbEntry {
    const protocols = entry.protocols.join(",");
    let list = this.protocolLists.get(protocols);
    if (!list) this.protocolLists.set(protocols, (list = Object.freeze([...entry.protocols])));
    return { ...entry, address: this.interner.string(entry.address), protocols: list };
  }

  onChange(listener: (changes: EntryChange[]) => void): void {
    this.listeners.push(listener);
  }

  published(deviceKey: string): PassdbEntry | undefined {
    return this.byDevice.get(deviceKey);
  }

  /** The shard Secret, and its resourceVersion, from which a device's entry is what it is now. */
  publishedSince(deviceKey: string): { shard: string; version: string } | undefined {
    return this.since.get(deviceKey);
  }

  get size(): number {
    return this.byDevice.size;
  }

  /** The shard a Secret name stands for, if it is one of the database's current shards. */
  shardIndex(name: string): number | undefined {
    const index = shardIndexOf(this.prefix, name);
    return index !== undefined && index < this.shardCount ? index : undefined;
  }

  /** Every ownership record the shards hold. */
  owners(): OwnershipRecord[] {
    return [...this.byShard.values()].flatMap((s) => s.owners);
  }

  /** Applies a shard Secret's new content (undefined: the shard is gone). */
  update(name: string, secret: ShardVersion | undefined): void {
    const index = this.shardIndex(name);
    if (index === undefined) return;
    const previous = this.byShard.get(index) ?? emptyShard;
    const next: ShardContent = { files: new Map(), owners: [], ownersEncoded: undefined };
    // The entries of the files that changed, before and after; unchanged files are carried over.
    const before: PassdbEntry[] = [];
    const after: PassdbEntry[] = [];
    for (const [key, encoded] of Object.entries(secret?.data ?? {})) {
      if (key === ownersKey) {
        next.ownersEncoded = encoded;
        next.owners = previous.ownersEncoded === encoded ? previous.owners : parseOwners(decode(encoded));
        continue;
      }
      const was = previous.files.get(key);
      if (was?.encoded === encoded) {
        next.files.set(key, was);
        continue;
      }
      const entries = parseShardFile(key, decode(encoded)).map((entry) => this.shared(entry));
      next.files.set(key, { encoded, entries });
      if (was) before.push(...was.entries);
      after.push(...entries);
    }
    for (const [key, was] of previous.files) if (!next.files.has(key)) before.push(...was.entries);
    for (const entry of before)
      if (this.byDevice.get(entry.device) === entry) this.byDevice.delete(entry.device);
    for (const entry of after) this.byDevice.set(entry.device, entry);
    if (next.files.size > 0 || next.owners.length > 0) this.byShard.set(index, next);
    else this.byShard.delete(index);
    const changes = diffEntries(before, after);
    const version = secret?.metadata.resourceVersion;
    for (const { kind, entry } of changes) {
      if (kind === "removed") {
        if (!this.byDevice.has(entry.device)) this.since.delete(entry.device);
      } else if (version !== undefined) this.since.set(entry.device, { shard: name, version });
    }
    if (changes.length > 0) for (const listener of this.listeners) listener(changes);
  }
}

/** What changed between two versions of a shard's entries. */
export function diffEntries(before: readonly PassdbEntry[], after: readonly PassdbEntry[]): EntryChange[] {
  const fingerprint = (e: PassdbEntry) => `${e.address}\t${e.hash}\t${e.protocols.join(",")}`;
  const previous = new Map(before.map((e) => [e.device, fingerprint(e)]));
  const changes: EntryChange[] = [];
  for (const entry of after) {
    const was = previous.get(entry.device);
    if (was === undefined) changes.push({ kind: "added", entry });
    else if (was !== fingerprint(entry)) changes.push({ kind: "changed", entry });
  }
  const kept = new Set(after.map((e) => e.device));
  for (const entry of before) if (!kept.has(entry.device)) changes.push({ kind: "removed", entry });
  return changes;
}

// What the password database holds now, read from its shard Secrets: the hash published for
// each device and the ownership records. Tells listeners which devices' entries changed, so they
// can react at once (mark a device Ready, cut the sessions of a revoked password). Shards beyond
// the configured count are not part of the database, whatever they hold.
import { decodeData, type SecretObject } from "../kube/objects.ts";
import type { OwnershipRecord } from "../policy/ownership.ts";
import { parseShard, shardIndexOf, type PassdbEntry } from "./format.ts";

export interface EntryChange {
  kind: "added" | "changed" | "removed";
  /** The entry now, or the removed one. */
  entry: PassdbEntry;
}

interface ShardContent {
  entries: PassdbEntry[];
  owners: OwnershipRecord[];
}

export class PassdbView {
  private readonly byDevice = new Map<string, PassdbEntry>();
  /** The shard, and its version, that first carried each device's entry as it is now. */
  private readonly since = new Map<string, { shard: string; version: string }>();
  private readonly byShard = new Map<number, ShardContent>();
  private readonly listeners: ((changes: EntryChange[]) => void)[] = [];
  private readonly prefix: string;
  private readonly shardCount: number;

  constructor(options: { prefix: string; shards: number }) {
    this.prefix = options.prefix;
    this.shardCount = options.shards;
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
  update(name: string, secret: SecretObject | undefined): void {
    const index = this.shardIndex(name);
    if (index === undefined) return;
    const before = this.byShard.get(index)?.entries ?? [];
    const after = secret ? parseShard(decodeData(secret)) : { entries: [], owners: [] };
    for (const entry of before)
      if (this.byDevice.get(entry.device) === entry) this.byDevice.delete(entry.device);
    for (const entry of after.entries) this.byDevice.set(entry.device, entry);
    if (after.entries.length > 0 || after.owners.length > 0) this.byShard.set(index, after);
    else this.byShard.delete(index);
    const changes = diffEntries(before, after.entries);
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

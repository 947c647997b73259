// What the password database holds now, read from its shard Secrets: the hash published for
// each device. Tells listeners which devices' entries changed, so they can react at once.
import { decodeData, type SecretObject } from "../policy/secret.ts";
import { parseShard, type PassdbEntry } from "./format.ts";

export class PassdbView {
  private readonly byDevice = new Map<string, PassdbEntry>();
  private readonly byShard = new Map<string, PassdbEntry[]>();
  private readonly listeners: ((changes: EntryChange[]) => void)[] = [];

  onChange(listener: (changes: EntryChange[]) => void): void {
    this.listeners.push(listener);
  }

  published(deviceKey: string): PassdbEntry | undefined {
    return this.byDevice.get(deviceKey);
  }

  get size(): number {
    return this.byDevice.size;
  }

  entries(): IterableIterator<PassdbEntry> {
    return this.byDevice.values();
  }

  /** Applies a shard Secret's new content (undefined: the shard is gone). */
  update(shardKey: string, secret: SecretObject | undefined): void {
    const before = this.byShard.get(shardKey) ?? [];
    const after = secret ? parseShard(decodeData(secret)) : [];
    for (const entry of before)
      if (this.byDevice.get(entry.device) === entry) this.byDevice.delete(entry.device);
    for (const entry of after) this.byDevice.set(entry.device, entry);
    if (after.length > 0) this.byShard.set(shardKey, after);
    else this.byShard.delete(shardKey);
    const changes = diffEntries(before, after);
    if (changes.length > 0) for (const listener of this.listeners) listener(changes);
  }
}

export interface EntryChange {
  kind: "added" | "changed" | "removed";
  /** The entry now, or the removed one. */
  entry: PassdbEntry;
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

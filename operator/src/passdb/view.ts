// What the password database holds now, read from its shard Secrets: the hash published for
// each device. Tells listeners which devices' entries changed, so they can react at once.
import { decodeData, type SecretObject } from "../policy/secret.ts";
import { parseShard, type PassdbEntry } from "./format.ts";

export class PassdbView {
  private readonly byDevice = new Map<string, PassdbEntry>();
  private readonly byShard = new Map<string, PassdbEntry[]>();
  private readonly listeners: ((changed: PassdbEntry[]) => void)[] = [];

  onChange(listener: (changed: PassdbEntry[]) => void): void {
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
    const previous = new Map(before.map((e) => [e.device, e.hash + "\t" + e.protocols.join(",")]));
    const changed = after.filter((e) => previous.get(e.device) !== e.hash + "\t" + e.protocols.join(","));
    const kept = new Set(after.map((e) => e.device));
    changed.push(...before.filter((e) => !kept.has(e.device)));
    if (changed.length > 0) for (const listener of this.listeners) listener(changed);
  }
}

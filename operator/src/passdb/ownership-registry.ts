// The operator's ownership records while it runs: loaded from the password database at start,
// advanced by nextOwnership whenever a controller looks at an address, and written back into the
// shards by the passdb controller. Every controller of one process sees the same owner.
import { nextOwnership, type OwnershipInput, type OwnershipRecord } from "../policy/ownership.ts";

export type OwnershipChange = (address: string, record: OwnershipRecord | undefined) => void;

export class OwnershipRegistry {
  private readonly records = new Map<string, OwnershipRecord>();
  /** The addresses of the records by shard, so a shard's pass does not scan every record. */
  private readonly byShard = new Map<number, Set<string>>();
  private readonly listeners: OwnershipChange[] = [];
  private readonly graceMs: number;
  private readonly now: () => Date;
  private readonly shardOf: (address: string) => number;

  constructor(options: { graceMs: number; now: () => Date; shardOf: (address: string) => number }) {
    this.graceMs = options.graceMs;
    this.now = options.now;
    this.shardOf = options.shardOf;
  }

  get grace(): number {
    return this.graceMs;
  }

  onChange(listener: OwnershipChange): void {
    this.listeners.push(listener);
  }

  /** Takes the records the database holds (at start, before any controller runs). */
  load(records: readonly OwnershipRecord[]): void {
    for (const record of records) if (!this.records.has(record.address)) this.set(record.address, record);
  }

  get(address: string): OwnershipRecord | undefined {
    return this.records.get(address);
  }

  /** The records of the addresses placed in `shard`. */
  inShard(shard: number): OwnershipRecord[] {
    return [...(this.byShard.get(shard) ?? [])].map((address) => this.records.get(address)!);
  }

  /** The record of `address` after this moment, given its claims now (recorded, and announced if changed). */
  resolve(
    address: string,
    claims: Pick<OwnershipInput, "admittedNamespaces" | "oldestAdmitted" | "reserved">,
  ): OwnershipRecord | undefined {
    const record = this.records.get(address);
    const next = nextOwnership({ address, record, ...claims, now: this.now(), graceMs: this.graceMs });
    if (sameRecord(record, next)) return record;
    if (next) this.set(address, next);
    else this.delete(address);
    for (const listener of this.listeners) listener(address, next);
    return next;
  }

  private set(address: string, record: OwnershipRecord): void {
    this.records.set(address, record);
    const shard = this.shardOf(address);
    let addresses = this.byShard.get(shard);
    if (!addresses) this.byShard.set(shard, (addresses = new Set()));
    addresses.add(address);
  }

  private delete(address: string): void {
    this.records.delete(address);
    this.byShard.get(this.shardOf(address))?.delete(address);
  }
}

function sameRecord(a: OwnershipRecord | undefined, b: OwnershipRecord | undefined): boolean {
  if (!a || !b) return a === b;
  return a.namespace === b.namespace && a.since === b.since && a.releasedAt === b.releasedAt;
}

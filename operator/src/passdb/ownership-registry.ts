// The operator's ownership records while it runs: loaded from the password database at start,
// advanced by nextOwnership whenever a controller looks at an address, and written back into the
// shards by the passdb controller. Every controller of one process sees the same owner.
import { nextOwnership, type OwnershipInput, type OwnershipRecord } from "../policy/ownership.ts";

export type OwnershipChange = (address: string, record: OwnershipRecord | undefined) => void;

export class OwnershipRegistry {
  private readonly records = new Map<string, OwnershipRecord>();
  private readonly listeners: OwnershipChange[] = [];
  private readonly graceMs: number;
  private readonly now: () => Date;

  constructor(options: { graceMs: number; now: () => Date }) {
    this.graceMs = options.graceMs;
    this.now = options.now;
  }

  get grace(): number {
    return this.graceMs;
  }

  onChange(listener: OwnershipChange): void {
    this.listeners.push(listener);
  }

  /** Takes the records the database holds (at start, before any controller runs). */
  load(records: readonly OwnershipRecord[]): void {
    for (const record of records)
      if (!this.records.has(record.address)) this.records.set(record.address, record);
  }

  get(address: string): OwnershipRecord | undefined {
    return this.records.get(address);
  }

  /** Every record whose address `matches`. */
  select(matches: (address: string) => boolean): OwnershipRecord[] {
    return [...this.records.values()].filter((r) => matches(r.address));
  }

  /** The record of `address` after this moment, given its claims now (recorded, and announced if changed). */
  resolve(
    address: string,
    claims: Pick<OwnershipInput, "admittedNamespaces" | "oldestAdmitted" | "reserved">,
  ): OwnershipRecord | undefined {
    const record = this.records.get(address);
    const next = nextOwnership({ address, record, ...claims, now: this.now(), graceMs: this.graceMs });
    if (sameRecord(record, next)) return record;
    if (next) this.records.set(address, next);
    else this.records.delete(address);
    for (const listener of this.listeners) listener(address, next);
    return next;
  }
}

function sameRecord(a: OwnershipRecord | undefined, b: OwnershipRecord | undefined): boolean {
  if (!a || !b) return a === b;
  return a.namespace === b.namespace && a.since === b.since && a.releasedAt === b.releasedAt;
}

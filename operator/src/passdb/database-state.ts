// What the passdb controller decided that the other controllers read: where an address's file
// lives (a keyed placement tenants cannot aim at) and which addresses found no room in their shard.

/** Far above the 50,000 devices (2,500 addresses) the product is built for; a few MiB at most. */
const maxRememberedPlacements = 100_000;

export class DatabaseState {
  /** Addresses left out of their shard for want of room. */
  readonly leftOut = new Set<string>();
  private readonly byShard = new Map<number, Set<string>>();
  private readonly listeners: ((mailAddress: string) => void)[] = [];
  private readonly placement: (mailAddress: string) => number;
  /** Placements computed so far: an HMAC per look-up was the database pass's main cost. */
  private readonly placed = new Map<string, number>();

  constructor(placement: (mailAddress: string) => number) {
    this.placement = placement;
  }

  /** The shard an address's file lives in. */
  shardOf(mailAddress: string): number {
    let shard = this.placed.get(mailAddress);
    if (shard === undefined) {
      // Addresses come and go: start over rather than grow without bound (recomputing is cheap).
      if (this.placed.size >= maxRememberedPlacements) this.placed.clear();
      shard = this.placement(mailAddress);
      this.placed.set(mailAddress, shard);
    }
    return shard;
  }

  /** Tells `listener` of every address that was left out or got room again. */
  onLeftOutChange(listener: (mailAddress: string) => void): void {
    this.listeners.push(listener);
  }

  /** The addresses a shard's last rendering left out. */
  setLeftOut(shard: number, addresses: readonly string[]): void {
    const before = this.byShard.get(shard) ?? new Set<string>();
    const after = new Set(addresses);
    this.byShard.set(shard, after);
    const changed = [...before, ...after].filter((a) => before.has(a) !== after.has(a));
    for (const address of changed) {
      if (after.has(address)) this.leftOut.add(address);
      else this.leftOut.delete(address);
    }
    for (const address of changed) for (const listener of this.listeners) listener(address);
  }
}

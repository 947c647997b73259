// What the passdb controller decided that the other controllers read: where an address's file
// lives (a keyed placement tenants cannot aim at) and which addresses found no room in their shard.

export class DatabaseState {
  /** Addresses left out of their shard for want of room. */
  readonly leftOut = new Set<string>();
  private readonly byShard = new Map<number, Set<string>>();
  private readonly listeners: ((mailAddress: string) => void)[] = [];
  private readonly placement: (mailAddress: string) => number;

  constructor(placement: (mailAddress: string) => number) {
    this.placement = placement;
  }

  /** The shard an address's file lives in. */
  shardOf(mailAddress: string): number {
    return this.placement(mailAddress);
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

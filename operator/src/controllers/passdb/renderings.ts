// What the passdb controller rendered of each address, per shard, and which addresses changed
// since: a pass renders again only the addresses a trigger marked (or whose ownership lapsed), so a
// change of one device costs its own address, not the shard's hundreds of devices. A shard never
// rendered, or marked whole (start, the periodic resync, a hand edit), is rendered whole.
import type { RenderedAddress } from "../../passdb/format.ts";

export interface CachedAddress extends RenderedAddress {
  /** The file as Secret data (base64), undefined without a file; the text itself is not kept. */
  encoded: string | undefined;
  /** When its ownership record lapses (ms since the epoch): it is rendered again then. */
  lapsesAt: number;
}

export class ShardRenderings {
  private readonly shards = new Map<number, Map<string, CachedAddress>>();
  private readonly marked = new Map<number, Set<string> | "all">();

  /** `address` (in `shard`) must be rendered again at the shard's next pass. */
  markAddress(shard: number, address: string): void {
    const marks = this.marked.get(shard);
    if (marks === "all") return;
    if (marks) marks.add(address);
    else this.marked.set(shard, new Set([address]));
  }

  /** Every address of `shard` must be rendered again at its next pass. */
  markShard(shard: number): void {
    this.marked.set(shard, "all");
  }

  /** The renderings of a shard's addresses, by mail address (kept between passes). */
  of(shard: number): Map<string, CachedAddress> {
    let addresses = this.shards.get(shard);
    if (!addresses) this.shards.set(shard, (addresses = new Map<string, CachedAddress>()));
    return addresses;
  }

  /** What a pass of `shard` must render again, and forgets it: the marked addresses, or all. */
  take(shard: number): Set<string> | "all" {
    const marks = this.marked.get(shard);
    this.marked.delete(shard);
    if (!this.shards.get(shard)?.size) return "all";
    return marks ?? new Set();
  }
}

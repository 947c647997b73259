import { describe, expect, it } from "vitest";
import { renderAddress } from "../../passdb/format.ts";
import { ShardRenderings } from "./renderings.ts";

const cached = (address: string) => ({
  ...renderAddress(address, [], undefined),
  encoded: undefined,
  lapsesAt: Infinity,
});

describe("ShardRenderings", () => {
  it("renders a shard never rendered whole, then only the addresses marked since", () => {
    const renderings = new ShardRenderings();
    renderings.markAddress(3, "a@x.io");
    expect(renderings.take(3)).toBe("all"); // nothing rendered yet
    renderings.of(3).set("a@x.io", cached("a@x.io"));
    renderings.of(3).set("b@x.io", cached("b@x.io"));
    expect(renderings.take(3)).toEqual(new Set()); // a retry or a timer: nothing changed
    renderings.markAddress(3, "a@x.io");
    renderings.markAddress(4, "c@x.io");
    expect(renderings.take(3)).toEqual(new Set(["a@x.io"]));
    expect(renderings.take(3)).toEqual(new Set()); // taken once
  });

  it("renders a shard marked whole again whole, whatever was marked before or after", () => {
    const renderings = new ShardRenderings();
    renderings.of(1).set("a@x.io", cached("a@x.io"));
    renderings.markAddress(1, "a@x.io");
    renderings.markShard(1);
    renderings.markAddress(1, "b@x.io");
    expect(renderings.take(1)).toBe("all");
  });
});

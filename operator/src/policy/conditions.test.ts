import { describe, expect, it } from "vitest";
import { setCondition } from "./conditions.ts";

const t0 = new Date("2026-01-01T00:00:00.123Z");
const t1 = new Date("2026-01-01T01:00:00Z");

describe("setCondition", () => {
  it("adds a condition with the time in whole seconds and the observed generation", () => {
    expect(
      setCondition(
        undefined,
        { type: "Ready", status: "False", reason: "Publishing", message: "Waiting." },
        3,
        t0,
      ),
    ).toEqual([
      {
        type: "Ready",
        status: "False",
        reason: "Publishing",
        message: "Waiting.",
        observedGeneration: 3,
        lastTransitionTime: "2026-01-01T00:00:00Z",
      },
    ]);
  });

  it("moves lastTransitionTime only when the status flips", () => {
    const first = setCondition(
      undefined,
      { type: "Ready", status: "False", reason: "A", message: "a." },
      1,
      t0,
    );
    const sameStatus = setCondition(
      first,
      { type: "Ready", status: "False", reason: "B", message: "b." },
      2,
      t1,
    );
    expect(sameStatus[0]).toMatchObject({
      reason: "B",
      lastTransitionTime: "2026-01-01T00:00:00Z",
      observedGeneration: 2,
    });
    const flipped = setCondition(
      sameStatus,
      { type: "Ready", status: "True", reason: "C", message: "c." },
      2,
      t1,
    );
    expect(flipped[0]?.lastTransitionTime).toBe("2026-01-01T01:00:00Z");
  });

  it("keeps conditions of other types", () => {
    const both = setCondition(
      setCondition(
        undefined,
        { type: "SessionsCut", status: "True", reason: "SessionsKicked", message: "k." },
        1,
        t0,
      ),
      { type: "Ready", status: "True", reason: "AddressReady", message: "r." },
      1,
      t0,
    );
    expect(both.map((c) => c.type).sort()).toEqual(["Ready", "SessionsCut"]);
  });
});

// The setup box opens only with its key, for its record.
import { describe, expect, it } from "vitest";
import { newSetupKey, openSetup, parseSetupKey, sealSetup } from "./setup-box.ts";

describe("the setup box", () => {
  it("opens with its key and record name only", () => {
    const key = newSetupKey();
    const box = sealSetup(key, "record-a", "pässword");
    expect(box).not.toContain("pässword");
    expect(openSetup(key, "record-a", box)).toBe("pässword");
    expect(openSetup(newSetupKey(), "record-a", box)).toBeUndefined();
    expect(openSetup(key, "record-b", box)).toBeUndefined();
    const [v, iv, ct, tag] = box.split(".");
    const flipped = Buffer.from(ct!, "base64url");
    flipped[0]! ^= 1;
    expect(openSetup(key, "record-a", [v, iv, flipped.toString("base64url"), tag].join("."))).toBeUndefined();
    expect(openSetup(key, "record-a", [v, iv, ct, tag!.slice(0, 8)].join("."))).toBeUndefined();
    expect(openSetup(key, "record-a", "v2.x.y.z")).toBeUndefined();
  });

  it("reads keys from URLs in one spelling", () => {
    const key = newSetupKey();
    expect(parseSetupKey(key.toString("base64url"))?.equals(key)).toBe(true);
    expect(parseSetupKey("A".repeat(42) + "B")).toBeUndefined();
    expect(parseSetupKey("short")).toBeUndefined();
  });
});

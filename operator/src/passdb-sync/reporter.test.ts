import { describe, expect, it } from "vitest";
import { readSyncReport } from "../passdb/sync-report.ts";
import { fitDocument } from "./reporter.ts";

const doc = (devices: number) => ({
  updatedAt: "2026-12-01T12:00:00.000Z",
  synced: true,
  shards: { "devicepass-passdb-00": "17" },
  lastLogins: Object.fromEntries(
    Array.from({ length: devices }, (_, i) => [
      `mail/device-${String(i).padStart(5, "0")}`,
      1_796_000_000 + i,
    ]),
  ),
});

describe("fitDocument", () => {
  it("keeps everything that fits", () => {
    const fitted = fitDocument(doc(10), 10_000);
    expect(fitted.kept).toBe(10);
    expect(JSON.parse(fitted.text)).toMatchObject({ format: 1, synced: true });
  });

  it("leaves out the oldest logins beyond the bound, and stays a valid report within it", () => {
    const fitted = fitDocument(doc(5000), 50_000);
    expect(Buffer.byteLength(fitted.text)).toBeLessThanOrEqual(50_000);
    expect(fitted.logins).toBe(5000);
    expect(fitted.kept).toBeGreaterThan(1000);
    expect(fitted.kept).toBeLessThan(5000);
    const { reports } = readSyncReport({ pod: fitted.text }, new Date("2026-12-01T12:00:00Z"));
    const kept = [...reports[0]!.lastLogins.keys()].sort();
    // The newest: the last `kept` devices (their logins are the latest).
    expect(kept[0]).toBe(`mail/device-${String(5000 - fitted.kept).padStart(5, "0")}`);
    expect(kept.at(-1)).toBe("mail/device-04999");
  });
});

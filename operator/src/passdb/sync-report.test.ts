import { describe, expect, it } from "vitest";
import {
  appliedEverywhere,
  latestLogins,
  liveReports,
  readSyncReport,
  renderSyncReport,
  syncReportStaleAfterMs,
} from "./sync-report.ts";

const now = new Date("2026-12-01T12:00:00Z");
const seconds = (iso: string) => Date.parse(iso) / 1000;
const doc = (overrides: Record<string, unknown> = {}) =>
  JSON.stringify({
    format: 1,
    updatedAt: "2026-12-01T11:59:50Z",
    synced: true,
    shards: { "devicepass-passdb-00": "120", "devicepass-passdb-01": "98" },
    lastLogins: { "mail/alice-iphone": seconds("2026-12-01T11:58:00Z") },
    ...overrides,
  });

describe("readSyncReport", () => {
  it("reads what renderSyncReport writes", () => {
    const text = renderSyncReport({
      updatedAt: "2026-12-01T11:59:50.000Z",
      synced: true,
      shards: { "devicepass-passdb-01": "98", "devicepass-passdb-00": "120" },
      lastLogins: { "mail/alice-iphone": seconds("2026-12-01T11:58:00Z") },
    });
    const { reports, problems } = readSyncReport({ "dovecot-7d9f8-x2x9q": text }, now);
    expect(problems).toEqual([]);
    expect(reports).toEqual([
      {
        pod: "dovecot-7d9f8-x2x9q",
        updatedAt: new Date("2026-12-01T11:59:50Z"),
        synced: true,
        shards: new Map([
          ["devicepass-passdb-00", "120"],
          ["devicepass-passdb-01", "98"],
        ]),
        lastLogins: new Map([["mail/alice-iphone", new Date("2026-12-01T11:58:00Z")]]),
      },
    ]);
  });

  it("skips documents that are not reports, and keys that are not pod names", () => {
    const { reports, problems } = readSyncReport(
      {
        "not json": doc(),
        garbage: "{",
        "other-format": doc({ format: 2 }),
        "extra-field": JSON.stringify({ ...JSON.parse(doc()), evil: true }),
        future: doc({ updatedAt: "2026-12-01T12:05:00Z" }),
        good: doc(),
      },
      now,
    );
    expect(reports.map((r) => r.pod)).toEqual(["good"]);
    expect(problems.map((p) => p.pod)).toEqual([
      "not json",
      "garbage",
      "other-format",
      "extra-field",
      "future",
    ]);
    expect(readSyncReport("nope", now).reports).toEqual([]);
    expect(readSyncReport(null, now).reports).toEqual([]);
  });

  it("drops bad entries one by one inside a valid document", () => {
    const { reports, problems } = readSyncReport(
      {
        pod: doc({
          shards: { "devicepass-passdb-00": "120", "Bad Name": "1", "devicepass-passdb-02": "12a" },
          lastLogins: {
            "mail/alice-iphone": seconds("2026-12-01T11:58:00Z"),
            "mail/../../etc": seconds("2026-12-01T11:58:00Z"),
            "Mail/Upper": seconds("2026-12-01T11:58:00Z"),
            "mail/fraction": seconds("2026-12-01T11:58:00Z") + 0.5,
            "mail/ancient": 1000,
            "mail/far-future": seconds("2026-12-01T13:00:00Z"),
            "mail/near-future": seconds("2026-12-01T12:00:30Z"),
          },
        }),
      },
      now,
    );
    expect([...reports[0]!.shards.keys()]).toEqual(["devicepass-passdb-00"]);
    expect(Object.fromEntries(reports[0]!.lastLogins)).toEqual({
      "mail/alice-iphone": new Date("2026-12-01T11:58:00Z"),
      // Within the clock skew: taken as now, never later.
      "mail/near-future": now,
    });
    expect(problems).toEqual([{ pod: "pod", message: "5 login stamps were not valid and were skipped." }]);
  });
});

describe("appliedEverywhere", () => {
  const read = (data: Record<string, string>) => readSyncReport(data, now).reports;

  it("holds when every live pod has the shard at that version or later", () => {
    const reports = read({ a: doc(), b: doc({ shards: { "devicepass-passdb-00": "1200" } }) });
    expect(appliedEverywhere(reports, "devicepass-passdb-00", "120", now)).toBe(true);
    expect(appliedEverywhere(reports, "devicepass-passdb-00", "119", now)).toBe(true);
    expect(appliedEverywhere(reports, "devicepass-passdb-00", "121", now)).toBe(false);
    // b has not written shard 01 at all.
    expect(appliedEverywhere(reports, "devicepass-passdb-01", "98", now)).toBe(false);
  });

  it("compares versions as numbers, not as text", () => {
    const reports = read({ a: doc({ shards: { s: "1000" } }) });
    expect(appliedEverywhere(reports, "s", "999", now)).toBe(true);
    expect(appliedEverywhere(reports, "s", "10000", now)).toBe(false);
    expect(appliedEverywhere(reports, "s", "not-a-version", now)).toBe(false);
  });

  it("does not count pods that stopped reporting, and says no when nobody reports or a pod is starting", () => {
    const stale = new Date(now.getTime() - syncReportStaleAfterMs - 1000).toISOString();
    const reports = read({ gone: doc({ updatedAt: stale, shards: {} }), live: doc() });
    expect(liveReports(reports, now).map((r) => r.pod)).toEqual(["live"]);
    expect(appliedEverywhere(reports, "devicepass-passdb-00", "120", now)).toBe(true);
    expect(appliedEverywhere([], "devicepass-passdb-00", "1", now)).toBe(false);
    expect(appliedEverywhere(read({ a: doc({ synced: false }) }), "devicepass-passdb-00", "1", now)).toBe(
      false,
    );
  });
});

describe("latestLogins", () => {
  it("takes each device's latest login over all pods", () => {
    const reports = readSyncReport(
      {
        a: doc({
          lastLogins: {
            "mail/x": seconds("2026-12-01T11:00:00Z"),
            "mail/y": seconds("2026-12-01T11:30:00Z"),
          },
        }),
        b: doc({ lastLogins: { "mail/x": seconds("2026-12-01T11:10:00Z") } }),
      },
      now,
    ).reports;
    expect(Object.fromEntries(latestLogins(reports))).toEqual({
      "mail/x": new Date("2026-12-01T11:10:00Z"),
      "mail/y": new Date("2026-12-01T11:30:00Z"),
    });
  });
});

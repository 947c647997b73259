import { describe, expect, it } from "vitest";
import { decideLastUsed, type LastUsedInput } from "./decide.ts";

const t = (hhmmss: string) => new Date(`2026-12-01T${hhmmss}Z`);
const base: LastUsedInput = {
  login: t("12:00:00"),
  current: undefined,
  lastWrite: undefined,
  created: t("08:00:00"),
  now: t("12:00:30"),
  precisionMs: 5 * 60_000,
};

describe("decideLastUsed", () => {
  it.each<[string, Partial<LastUsedInput>, ReturnType<typeof decideLastUsed>]>([
    ["no login reported", { login: undefined }, { kind: "none" }],
    ["the first login", {}, { kind: "write", lastUsedAt: t("12:00:00") }],
    ["a login within the precision of the status", { current: t("11:56:00") }, { kind: "none" }],
    ["a login as old as the status", { current: t("12:00:00") }, { kind: "none" }],
    ["an older login than the status", { current: t("12:30:00") }, { kind: "none" }],
    [
      "a login one precision after the status",
      { current: t("11:55:00") },
      { kind: "write", lastUsedAt: t("12:00:00") },
    ],
    [
      "a newer login, but the last write was 2 minutes ago",
      { current: t("11:50:00"), lastWrite: t("11:58:30") },
      { kind: "wait", ms: 3 * 60_000 },
    ],
    [
      "a newer login, the last write long ago",
      { current: t("11:50:00"), lastWrite: t("11:50:05") },
      { kind: "write", lastUsedAt: t("12:00:00") },
    ],
    [
      "a login before the device was created (an earlier device of that name)",
      { created: t("12:00:10") },
      { kind: "none" },
    ],
    [
      "a login in the future is taken as now",
      { login: t("12:01:00") },
      { kind: "write", lastUsedAt: t("12:00:30") },
    ],
    [
      "fractions of a second are dropped",
      { login: new Date("2026-12-01T12:00:00.900Z") },
      { kind: "write", lastUsedAt: t("12:00:00") },
    ],
  ])("%s", (_name, overrides, expected) => {
    expect(decideLastUsed({ ...base, ...overrides })).toEqual(expected);
  });

  it("writes at most once per precision interval, whatever the login rate", () => {
    const precisionMs = 5 * 60_000;
    let current: Date | undefined;
    let lastWrite: Date | undefined;
    const writes: number[] = [];
    // A login every 10 s for two hours, read by the controller as soon as it is reported.
    for (let s = 0; s <= 7200; s += 10) {
      const now = new Date(t("10:00:00").getTime() + s * 1000);
      const decision = decideLastUsed({
        login: now,
        current,
        lastWrite,
        created: t("08:00:00"),
        now,
        precisionMs,
      });
      if (decision.kind === "write") {
        current = decision.lastUsedAt;
        lastWrite = now;
        writes.push(s);
      }
    }
    expect(writes.length).toBe(25); // 2 h / 5 min, plus the first
    for (let i = 1; i < writes.length; i++) expect(writes[i]! - writes[i - 1]!).toBeGreaterThanOrEqual(300);
  });
});

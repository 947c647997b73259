import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deviceOfStamp, readStamps, stampFileOf } from "./stamps.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "devicepass-stamps-test-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe("stamps", () => {
  it("name a device as the Lua passdb does, and nothing else", () => {
    expect(stampFileOf("mail/alice-iphone")).toBe("mail_alice-iphone");
    expect(deviceOfStamp("mail_alice-iphone")).toBe("mail/alice-iphone");
    expect(deviceOfStamp("mail_alice.iphone.v2")).toBe("mail/alice.iphone.v2");
    for (const name of ["mail", "mail_", "_x", "Mail_x", "a_b_c", ".tmp", "mail_../x", "x".repeat(64) + "_y"])
      expect(deviceOfStamp(name), name).toBeUndefined();
  });

  it("reads each device's last login from the file's time, and removes stamps too old to report", async () => {
    const at = (iso: string) => new Date(iso);
    await writeFile(join(dir, "mail_alice-iphone"), "1");
    await utimes(join(dir, "mail_alice-iphone"), at("2026-12-01T12:00:00Z"), at("2026-12-01T12:00:00Z"));
    await writeFile(join(dir, "mail_old-phone"), "1");
    await utimes(join(dir, "mail_old-phone"), at("2026-12-01T10:00:00Z"), at("2026-12-01T10:00:00Z"));
    await writeFile(join(dir, "not a stamp"), "1");
    const stamps = await readStamps(dir, Date.parse("2026-12-01T11:00:00Z") / 1000);
    expect(Object.fromEntries(stamps)).toEqual({
      "mail/alice-iphone": Date.parse("2026-12-01T12:00:00Z") / 1000,
    });
    expect((await readdir(dir)).sort()).toEqual(["mail_alice-iphone", "not a stamp"]);
  });
});

import { mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AddressFiles, isSafeFileName } from "./files.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "devicepass-files-test-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe("isSafeFileName", () => {
  it("allows Secret key characters, never a leading dot, a slash or an empty name", () => {
    for (const name of ["alice_40example.com", "a-b.c_d", "A1"]) expect(isSafeFileName(name)).toBe(true);
    for (const name of ["", ".", "..", "..data", ".tmp-x", "a/b", "a\0b", "a b", "x".repeat(254)])
      expect(isSafeFileName(name)).toBe(false);
  });
});

describe("AddressFiles", () => {
  it("writes each file with its mode, replaces it whole, and leaves no temporary file", async () => {
    const files = await AddressFiles.open({ dir, mode: 0o440 });
    expect(await files.write("alice_40example.com", "one\n")).toBe(true);
    expect(await files.write("alice_40example.com", "one\n")).toBe(false); // unchanged: untouched
    const first = await stat(join(dir, "alice_40example.com"));
    expect(first.mode & 0o777).toBe(0o440);
    expect(await files.write("alice_40example.com", "two\n")).toBe(true);
    const second = await stat(join(dir, "alice_40example.com"));
    // A new inode: readers holding the old file keep reading the old version whole.
    expect(second.ino).not.toBe(first.ino);
    expect(await readFile(join(dir, "alice_40example.com"), "utf8")).toBe("two\n");
    expect(await readdir(dir)).toEqual(["alice_40example.com"]);
    await files.syncDir();
  });

  it("refuses names that are not safe", async () => {
    const files = await AddressFiles.open({ dir });
    await expect(files.write("../escape", "x")).rejects.toThrow(/not a safe file name/);
    await expect(files.write(".hidden", "x")).rejects.toThrow(/not a safe file name/);
  });

  it("removes files, and a file already gone is no error", async () => {
    const files = await AddressFiles.open({ dir });
    await files.write("a", "x");
    await rm(join(dir, "a"));
    expect(await files.remove("a")).toBe(true);
    expect(await files.remove("a")).toBe(false);
  });

  it("reopens a folder a previous run left: keeps its files, drops its temporary files, ignores the rest", async () => {
    await writeFile(join(dir, "alice_40example.com"), "kept\n");
    await writeFile(join(dir, ".tmp-0123-alice_40example.com"), "half writ");
    await writeFile(join(dir, "bad name"), "?");
    await symlink("alice_40example.com", join(dir, "link"));
    const files = await AddressFiles.open({ dir });
    expect(files.names().sort()).toEqual(["alice_40example.com"]);
    expect(files.content("alice_40example.com")).toBe("kept\n");
    expect((await readdir(dir)).sort()).toEqual(["alice_40example.com", "bad name", "link"]);
  });
});

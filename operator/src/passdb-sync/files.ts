// The folder Dovecot reads the password database from, as passdb-sync keeps it: one file per
// address, each replaced atomically (a temporary file in the same folder, fsync, rename), so that
// a login reads either the old or the new version of a file, never a part of one.
import { randomBytes } from "node:crypto";
import { lstat, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { maxKeyLength } from "../passdb/format.ts";

/**
 * A Secret key as a file name: [-._a-zA-Z0-9], at most 253 characters, and never starting with a
 * dot, so that it is never `.` or `..`, never a temporary file of ours, and never a kubelet
 * volume's `..data`. No address key starts with a dot (a mail address cannot).
 */
export function isSafeFileName(name: string): boolean {
  return name.length > 0 && name.length <= maxKeyLength && /^[-_a-zA-Z0-9][-._a-zA-Z0-9]*$/.test(name);
}

/** Temporary files start with a dot: never a key, and the Lua passdb refuses such names. */
const temporaryPrefix = ".tmp-";

export interface AddressFilesOptions {
  dir: string;
  /** File mode of each address file (default 0440: the owner and the group Dovecot reads as). */
  mode?: number;
}

export class AddressFiles {
  readonly dir: string;
  private readonly mode: number;
  /** What is on disk, by file name: read at open, then kept by our own writes. */
  private readonly onDisk = new Map<string, string>();

  private constructor(dir: string, mode: number) {
    this.dir = dir;
    this.mode = mode;
  }

  /**
   * Opens the folder: removes temporary files an interrupted run left, and reads the address files
   * already there (an emptyDir outlives a container restart), so that unchanged files stay as they are.
   */
  static async open(options: AddressFilesOptions): Promise<AddressFiles> {
    const files = new AddressFiles(options.dir, options.mode ?? 0o440);
    for (const name of await readdir(options.dir)) {
      const path = join(options.dir, name);
      if (name.startsWith(temporaryPrefix)) {
        await unlink(path).catch(() => {});
        continue;
      }
      if (!isSafeFileName(name)) continue;
      const stat = await lstat(path);
      if (!stat.isFile()) continue;
      files.onDisk.set(name, await readFile(path, "utf8"));
    }
    return files;
  }

  /** The names of the address files on disk. */
  names(): string[] {
    return [...this.onDisk.keys()];
  }

  content(name: string): string | undefined {
    return this.onDisk.get(name);
  }

  /** Writes `content` as file `name`, atomically; unchanged content is not rewritten. */
  async write(name: string, content: string): Promise<boolean> {
    if (!isSafeFileName(name)) throw new Error(`not a safe file name: ${JSON.stringify(name.slice(0, 64))}`);
    if (this.onDisk.get(name) === content) return false;
    const temporary = join(
      this.dir,
      `${temporaryPrefix}${randomBytes(6).toString("hex")}-${name}`.slice(0, 255),
    );
    const file = await open(temporary, "wx", this.mode);
    try {
      await file.chmod(this.mode); // exactly this mode, whatever the umask
      await file.writeFile(content, "utf8");
      // The data first, then the name: after a crash the new name never points to missing data.
      await file.sync();
    } catch (error) {
      await file.close();
      await unlink(temporary).catch(() => {});
      throw error;
    }
    await file.close();
    try {
      await rename(temporary, join(this.dir, name));
    } catch (error) {
      await unlink(temporary).catch(() => {});
      throw error;
    }
    this.onDisk.set(name, content);
    return true;
  }

  /** Removes file `name` (an address that is gone); false when it was not there. */
  async remove(name: string): Promise<boolean> {
    if (!this.onDisk.has(name)) return false;
    await unlink(join(this.dir, name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
    this.onDisk.delete(name);
    return true;
  }

  /** Makes the renames and removals so far durable (one fsync of the folder for a batch). */
  async syncDir(): Promise<void> {
    const dir = await open(this.dir, "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

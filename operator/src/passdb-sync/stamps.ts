// The last-login stamps the Lua passdb leaves: one small file per device in a folder shared with
// Dovecot, named `<namespace>_<device>`, touched at a successful login (at most once a minute per
// auth worker). Its modification time is the login's time. Dovecot's side writes them, so names
// are checked and anything else in the folder is ignored.
import { readdir, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { deviceKeyPattern } from "../passdb/sync-report.ts";

/** `namespace_device` → `namespace/device`, if it names a MailDevice (neither part holds `_`). */
export function deviceOfStamp(fileName: string): string | undefined {
  const device = fileName.replace("_", "/");
  return deviceKeyPattern.test(device) ? device : undefined;
}

/** The stamp file of a device (the Lua passdb's own naming). */
export function stampFileOf(device: string): string {
  return device.replace("/", "_");
}

/**
 * Every device's last login in the folder (seconds since the epoch). Stamps older than
 * `forgetBeforeSeconds` are removed: the device has not logged in here since, and a deleted
 * device's stamp must not pile up.
 */
export async function readStamps(dir: string, forgetBeforeSeconds: number): Promise<Map<string, number>> {
  const stamps = new Map<string, number>();
  for (const name of await readdir(dir)) {
    const device = deviceOfStamp(name);
    if (!device) continue;
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) continue;
    const seconds = Math.floor(info.mtimeMs / 1000);
    if (seconds < forgetBeforeSeconds) {
      await unlink(path).catch(() => {});
      continue;
    }
    stamps.set(device, seconds);
  }
  return stamps;
}

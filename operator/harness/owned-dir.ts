// Temp folders whose processes never outlive the test run: a pids/ list and the control plane's
// watchdog (which kills them and removes the folder if this process dies without cleaning up),
// and a stop that waits for the children of a master process too.
import { spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ManagedProcess } from "./process.ts";

const watchdogScript = join(import.meta.dirname, "watchdog.sh");

/** Every descendant of `pid`, from /proc (children of a master outlive it by a moment). */
export async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // The command name may hold spaces and parentheses: fields start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ppid = Number(fields[1]);
    if (!parents.has(ppid)) parents.set(ppid, []);
    parents.get(ppid)!.push(Number(entry));
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of parents.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** Is `pid` still running (a zombie waiting for its reaper counts as gone)? */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  return stat !== undefined && stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
}

/** Stops a master process, then makes sure none of its children outlives it. */
export async function stopTree(process: ManagedProcess): Promise<void> {
  const pid = process.pid;
  const children = pid !== undefined && process.running ? await descendants(pid) : [];
  await process.stop();
  const deadline = Date.now() + 5000;
  let left = children;
  while (left.length > 0) {
    const still: number[] = [];
    for (const child of left) if (await alive(child)) still.push(child);
    left = still;
    if (left.length === 0) break;
    if (Date.now() > deadline) {
      for (const child of left) {
        try {
          globalThis.process.kill(child, "SIGKILL");
        } catch {
          // gone meanwhile
        }
      }
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A temp folder with a pids/ list and a watchdog that cleans up if this process dies without stop(). */
export async function ownedTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  // Dovecot's and Postfix's unprivileged processes (auth workers, mail processes) must reach inside.
  await chmod(dir, 0o755);
  await mkdir(join(dir, "pids"));
  spawn("bash", [watchdogScript, String(globalThis.process.pid), dir], {
    detached: true,
    stdio: "ignore",
  }).unref();
  return dir;
}

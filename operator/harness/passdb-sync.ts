// `devicepass passdb-sync` exactly as it runs beside Dovecot: `node operator/src/main.ts passdb-sync
// --dir …` as its own process, with the folders a pod would give it: the database folder (group
// dovecot, set-group-ID, like an emptyDir under the pod's fsGroup) and the stamp folder the Lua
// passdb writes to. Its JSON log (stderr) is kept in a file; SIGTERM stops it.
import { execFileSync } from "node:child_process";
import { chmod, chown, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { ownedTempDir, stopTree } from "./owned-dir.ts";
import { ManagedProcess } from "./process.ts";

const mainScript = join(import.meta.dirname, "..", "src", "main.ts");

/** The group Dovecot's auth workers run as (Debian: dovecot), as a pod's fsGroup. */
export function dovecotGroup(): number {
  return Number(execFileSync("id", ["-g", "dovecot"], { encoding: "utf8" }).trim());
}

export interface PassdbSyncOptions {
  kubeconfig: string;
  /** The database namespace. */
  namespace: string;
  shards: number;
  secretPrefix?: string;
  /** Local doveadm: flush and kick after each file change. */
  doveadm?: { url: string; apiKeyFile: string };
  /** Pass --stamp-dir (the Lua passdb's last-login stamps). */
  stamps?: boolean;
  /** Further flags, e.g. `--report-interval-seconds 1`. */
  args?: string[];
  /** Reuse the folders of an earlier process (a container restart keeps its emptyDir). */
  dirs?: { dir: string; passdbDir: string; stampDir: string };
}

export class PassdbSyncProcess {
  readonly dir: string;
  /** What Dovecot reads: DEVICEPASS_PASSDB_DIR. */
  readonly passdbDir: string;
  /** Where Dovecot writes stamps: DEVICEPASS_STAMP_DIR. */
  readonly stampDir: string;
  private process: ManagedProcess;
  private readonly args: string[];
  private stopped = false;

  private constructor(dir: string, passdbDir: string, stampDir: string, args: string[]) {
    this.dir = dir;
    this.passdbDir = passdbDir;
    this.stampDir = stampDir;
    this.args = args;
    this.process = this.newProcess();
  }

  private newProcess(): ManagedProcess {
    return new ManagedProcess(
      "passdb-sync",
      globalThis.process.execPath,
      [mainScript, "passdb-sync", ...this.args],
      this.dir,
    );
  }

  /** The folders of a pod: both shared with Dovecot, the database one read-only for it. */
  static async folders(): Promise<{ dir: string; passdbDir: string; stampDir: string }> {
    const dir = await ownedTempDir("devicepass-passdb-sync-");
    const passdbDir = join(dir, "passdb");
    const stampDir = join(dir, "stamps");
    const gid = dovecotGroup();
    await mkdir(passdbDir);
    await chown(passdbDir, 0, gid);
    // rwxr-s---: files created in it get the dovecot group, as in an emptyDir with fsGroup.
    await chmod(passdbDir, 0o2750);
    await mkdir(stampDir);
    await chown(stampDir, 0, gid);
    await chmod(stampDir, 0o2770);
    return { dir, passdbDir, stampDir };
  }

  /** Starts it and waits until its folder is in sync with the shards (its "in sync" log line). */
  static async start(options: PassdbSyncOptions, timeoutMs = 60_000): Promise<PassdbSyncProcess> {
    const dirs = options.dirs ?? (await PassdbSyncProcess.folders());
    const args = [
      "--kubeconfig", options.kubeconfig,
      "--namespace", options.namespace,
      "--shards", String(options.shards),
      "--dir", dirs.passdbDir,
      "--log-level", "debug",
      ...(options.secretPrefix ? ["--secret-prefix", options.secretPrefix] : []),
      ...(options.stamps ? ["--stamp-dir", dirs.stampDir] : []),
      ...(options.doveadm ? ["--doveadm-url", options.doveadm.url, "--doveadm-api-key-file", options.doveadm.apiKeyFile] : []),
      ...(options.args ?? []),
    ]; // prettier-ignore
    const sync = new PassdbSyncProcess(dirs.dir, dirs.passdbDir, dirs.stampDir, args);
    try {
      await sync.launch(timeoutMs);
    } catch (error) {
      await sync.stop();
      throw error;
    }
    return sync;
  }

  private async launch(timeoutMs: number): Promise<void> {
    const logged = (await this.log()).split('"password database folder in sync"').length;
    await this.process.start();
    await this.waitForLog('"password database folder in sync"', logged, timeoutMs);
  }

  /** Waits until its log holds `text` more than `seen` times (seen: occurrences before). */
  async waitForLog(text: string, seen = 0, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.log()).split(text).length <= seen) {
      await this.process.assertRunning();
      if (Date.now() > deadline)
        throw new Error(`passdb-sync did not log ${text} in ${timeoutMs} ms:\n${await this.process.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Its log so far (JSON lines). */
  log(): Promise<string> {
    return readFile(join(this.dir, "passdb-sync.log"), "utf8").catch(() => "");
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** Stops the process (SIGKILL by default: a crash), keeping its folders as an emptyDir keeps them. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    await this.process.stop(signal, 5000);
  }

  /** A new process on the same folders (the container restarted); waits until it is in sync. */
  async resume(): Promise<void> {
    this.process = this.newProcess();
    await this.launch(60_000);
  }

  /** A container restart: killed, then started again on the same folders. */
  async restart(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    await this.kill(signal);
    await this.resume();
  }

  /** SIGTERM, then removes its folders. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await stopTree(this.process);
    await rm(this.dir, { recursive: true, force: true });
  }
}

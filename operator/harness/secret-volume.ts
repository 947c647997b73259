// Mirrors the password database's shard Secrets into a folder the way kubelet fills a projected
// Secret volume (its AtomicWriter): each key a file in a timestamped data folder, `..data` a
// symlink to it swapped atomically by rename, and each key a symlink through `..data`. So Dovecot
// in tests reads exactly the layout, and sees exactly the kind of update, it gets in a pod.
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readdir,
  readlink,
  rename,
  rm,
  symlink,
  unlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { KubeClient, type WatchEvent } from "../src/kube/client.ts";
import { resources } from "../src/kube/resources.ts";

export interface SecretVolumeOptions {
  kubeconfig: string;
  namespace: string;
  /** Which Secrets to project; by default the password database's shards. */
  labelSelector?: string;
  /** The volume's folder; a new temp folder when absent. */
  dir?: string;
  /** File mode of each key, like the volume's defaultMode (kubelet's default is 0644). */
  defaultMode?: number;
  /** Group owner of each file, like the pod's fsGroup (kubelet also adds group read). */
  fsGroup?: number;
  log?: (line: string) => void;
}

interface SecretJson {
  metadata: { name: string; resourceVersion: string };
  data?: Record<string, string>;
}

const dataLink = "..data";
const dataLinkTmp = "..data_tmp";

/** kubelet's data folder name: `..` and the time as Go's "2006_01_02_15_04_05.", then random. */
function timestampPrefix(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const t = [now.getFullYear(), p(now.getMonth() + 1), p(now.getDate()), p(now.getHours()), p(now.getMinutes()), p(now.getSeconds())]; // prettier-ignore
  return `..${t.join("_")}.`;
}

export class SecretVolume {
  readonly dir: string;
  /** Number of atomic swaps of `..data` so far (0 until the first content is written). */
  swaps = 0;
  /** Listeners called after each swap, with the time of the rename (performance.now()). */
  private readonly swapListeners: ((at: number) => void)[] = [];
  private readonly secrets = new Map<string, Record<string, string>>();
  private written: string | undefined;
  private writing: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();
  private loop: Promise<void> = Promise.resolve();

  private readonly client: KubeClient;
  private readonly options: SecretVolumeOptions;
  private readonly selector: string;

  private constructor(client: KubeClient, dir: string, options: SecretVolumeOptions) {
    this.client = client;
    this.dir = dir;
    this.options = options;
    this.selector = options.labelSelector ?? "app.kubernetes.io/component=passdb";
  }

  /** Lists the Secrets, writes the first version of the volume, and keeps it in sync by a watch. */
  static async start(options: SecretVolumeOptions): Promise<SecretVolume> {
    const client = await KubeClient.fromKubeconfig(options.kubeconfig, "devicepass-test-secret-volume");
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "devicepass-secret-volume-")));
    await mkdir(dir, { recursive: true });
    // A Secret volume's root is world-traversable (tmpfs, 1777); the files carry the protection.
    await chmod(dir, 0o755);
    const volume = new SecretVolume(client, dir, options);
    const resourceVersion = await volume.relist();
    volume.loop = volume.watchLoop(resourceVersion);
    return volume;
  }

  onSwap(listener: (at: number) => void): void {
    this.swapListeners.push(listener);
  }

  private async relist(): Promise<string> {
    const list = await this.client.list<SecretJson>(
      { ...resources.secrets, namespace: this.options.namespace },
      { labelSelector: this.selector },
    );
    this.secrets.clear();
    for (const secret of list.items) this.secrets.set(secret.metadata.name, secret.data ?? {});
    await this.sync();
    return list.metadata.resourceVersion;
  }

  /** Watches from `resourceVersion`, resuming after stream ends and relisting when it is too old. */
  private async watchLoop(resourceVersion: string): Promise<void> {
    let rv = resourceVersion;
    while (!this.abort.signal.aborted) {
      try {
        let expired = false;
        await this.client.watch<SecretJson & { code?: number }>(
          { ...resources.secrets, namespace: this.options.namespace },
          { labelSelector: this.selector, resourceVersion: rv, allowWatchBookmarks: true },
          (event: WatchEvent<SecretJson & { code?: number }>) => {
            if (event.type === "ERROR") {
              expired = true; // 410 Gone and friends: the only cure is a new list
              return;
            }
            rv = event.object.metadata.resourceVersion;
            if (event.type === "BOOKMARK") return;
            if (event.type === "DELETED") this.secrets.delete(event.object.metadata.name);
            else this.secrets.set(event.object.metadata.name, event.object.data ?? {});
            void this.sync();
          },
          this.abort.signal,
        );
        if (expired) rv = await this.relist();
      } catch (error) {
        if (this.abort.signal.aborted) return;
        this.options.log?.(`secret volume watch failed, relisting: ${(error as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
        rv = await this.relist().catch(() => rv);
      }
    }
  }

  /** Queues a write of the current content; writes never overlap, and the last one wins. */
  private sync(): Promise<void> {
    this.writing = this.writing
      .then(() => this.write())
      .catch((error: unknown) => {
        this.options.log?.(`secret volume write failed: ${(error as Error).message}`);
      });
    return this.writing;
  }

  /** AtomicWriter.Write: new data folder, `..data_tmp` renamed over `..data`, key links, old folder removed. */
  private async write(): Promise<void> {
    const payload = new Map<string, Buffer>();
    for (const name of [...this.secrets.keys()].sort())
      for (const [key, value] of Object.entries(this.secrets.get(name)!))
        payload.set(key, Buffer.from(value, "base64"));
    const fingerprint = JSON.stringify([...payload].map(([k, v]) => [k, v.toString("base64")]));
    if (fingerprint === this.written) return; // kubelet too leaves an unchanged volume alone

    const old = await readlink(join(this.dir, dataLink)).catch(() => undefined);
    const dataDir = await mkdtemp(join(this.dir, timestampPrefix()));
    await chmod(dataDir, 0o755);
    const mode = this.options.defaultMode ?? 0o644;
    for (const [key, value] of payload) {
      const file = join(dataDir, key);
      await writeFile(file, value);
      if (this.options.fsGroup !== undefined) await chown(file, 0, this.options.fsGroup);
      await chmod(file, this.options.fsGroup !== undefined ? mode | 0o040 : mode);
    }
    await rm(join(this.dir, dataLinkTmp), { force: true });
    await symlink(basename(dataDir), join(this.dir, dataLinkTmp));
    await rename(join(this.dir, dataLinkTmp), join(this.dir, dataLink));
    const swappedAt = performance.now();

    const present = new Set((await readdir(this.dir)).filter((n) => !n.startsWith("..")));
    for (const key of payload.keys())
      if (!present.has(key)) await symlink(join(dataLink, key), join(this.dir, key));
    for (const name of present) if (!payload.has(name)) await unlink(join(this.dir, name));
    if (old !== undefined) await rm(join(this.dir, old), { recursive: true, force: true });

    this.written = fingerprint;
    this.swaps++;
    for (const listener of this.swapListeners) listener(swappedAt);
  }

  /** Resolves once the writes queued so far are on disk. */
  settled(): Promise<void> {
    return this.writing;
  }

  /** Stops watching, and removes the folder unless `removeDir` is false. */
  async stop(removeDir = true): Promise<void> {
    this.abort.abort();
    await this.loop.catch(() => {});
    await this.writing;
    await this.client.close();
    if (removeDir) await rm(this.dir, { recursive: true, force: true });
  }
}

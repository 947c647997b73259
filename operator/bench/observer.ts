// What the bench sees, straight from the API server (never the operator's cache): watches of the
// MailDevices, their credential Secrets and the password database's shard Secrets, and from them
// which devices are Ready and which have their Secret's current hash in the database.
import { labels, managedByValue, components, secretAnnotations } from "../src/api/names.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { resources } from "../src/kube/resources.ts";
import type { Logger } from "../src/log.ts";
import { parseShard } from "../src/passdb/format.ts";
import { Informer, objectKey } from "../src/runtime/informer.ts";

interface Device {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  status?: { conditions?: { type: string; status: string }[] };
}

interface Secret {
  metadata: {
    name: string;
    namespace: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    ownerReferences?: { kind: string; name: string; controller?: boolean }[];
  };
  data?: Record<string, string>;
}

export interface ObserverOptions {
  client: KubeClient;
  log: Logger;
  namespace: string;
  passdbNamespace: string;
}

/** Devices whose state the bench waits for; resolves when `done` holds for them. */
interface Waiter {
  done: () => boolean;
  resolve: (at: number) => void;
}

export class Observer {
  private readonly devices: Informer<Device>;
  private readonly secrets: Informer<Secret>;
  private readonly shards: Informer<Secret>;
  private readonly abort = new AbortController();
  private runs: Promise<void>[] = [];
  /** Device key → the hash its credential Secret holds. */
  private readonly secretHash = new Map<string, string>();
  /** Device key → the hash the database holds, and the shard it came from. */
  private readonly dbHash = new Map<string, { hash: string; shard: string }>();
  private readonly shardDevices = new Map<string, string[]>();
  /** Devices with Ready=True, and devices whose Secret's hash is the database's. */
  readonly ready = new Set<string>();
  readonly published = new Set<string>();
  private readonly waiters = new Set<Waiter>();
  /** Database entries seen, counting every device once. */
  get databaseEntries(): number {
    return this.dbHash.size;
  }

  constructor({ client, log, namespace, passdbNamespace }: ObserverOptions) {
    const managed = `${labels.managedBy}=${managedByValue}`;
    this.devices = new Informer<Device>({ client, log, ref: resources.mailDevices, namespaces: [namespace] });
    this.secrets = new Informer<Secret>({
      client,
      log,
      ref: resources.secrets,
      namespaces: [namespace],
      labelSelector: `${managed},${labels.component}=credentials`,
    });
    this.shards = new Informer<Secret>({
      client,
      log,
      ref: resources.secrets,
      namespaces: [passdbNamespace],
      labelSelector: `${managed},${labels.component}=${components.passdb}`,
    });
    this.devices.onChange((device, _old, deleted) => {
      const key = objectKey(device);
      const ready = device.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
      if (ready && !deleted) this.ready.add(key);
      else this.ready.delete(key);
      this.check();
    });
    this.secrets.onChange((secret, _old, deleted) => {
      const owner = secret.metadata.ownerReferences?.find((ref) => ref.controller)?.name;
      if (!owner) return;
      const key = `${secret.metadata.namespace}/${owner}`;
      const hash = secret.metadata.annotations?.[secretAnnotations.passwordHash];
      if (hash && !deleted) this.secretHash.set(key, hash);
      else this.secretHash.delete(key);
      this.recheck(key);
      this.check();
    });
    this.shards.onChange((shard, _old, deleted) => {
      const shardKey = objectKey(shard);
      const data = Object.fromEntries(
        Object.entries(deleted ? {} : (shard.data ?? {})).map(([k, v]) => [
          k,
          Buffer.from(v, "base64").toString("utf8"),
        ]),
      );
      const { entries } = parseShard(data);
      const before = this.shardDevices.get(shardKey) ?? [];
      for (const device of before)
        if (this.dbHash.get(device)?.shard === shardKey) this.dbHash.delete(device);
      for (const e of entries) this.dbHash.set(e.device, { hash: e.hash, shard: shardKey });
      this.shardDevices.set(
        shardKey,
        entries.map((e) => e.device),
      );
      for (const device of new Set([...before, ...entries.map((e) => e.device)])) this.recheck(device);
      this.check();
    });
  }

  private recheck(key: string): void {
    const hash = this.secretHash.get(key);
    if (hash !== undefined && this.dbHash.get(key)?.hash === hash) this.published.add(key);
    else this.published.delete(key);
  }

  private check(): void {
    if (this.waiters.size === 0) return;
    const at = performance.now();
    for (const waiter of this.waiters) {
      if (!waiter.done()) continue;
      this.waiters.delete(waiter);
      waiter.resolve(at);
    }
  }

  async start(): Promise<void> {
    const informers = [this.devices, this.secrets, this.shards];
    this.runs = informers.map((informer: { run(signal: AbortSignal): Promise<void> }) =>
      informer.run(this.abort.signal),
    );
    await Promise.all(informers.map((informer) => informer.synced));
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.runs);
  }

  /** Resolves with performance.now() of the first moment `done` holds (checked on every change). */
  until(done: () => boolean): Promise<number> {
    if (done()) return Promise.resolve(performance.now());
    return new Promise((resolve) => this.waiters.add({ done, resolve }));
  }

  /** Every one of `count` devices is Ready and has its Secret's hash in the database. */
  converged(count: number): boolean {
    return this.devices.size === count && this.ready.size === count && this.published.size === count;
  }

  hashOf(deviceKey: string): string | undefined {
    return this.secretHash.get(deviceKey);
  }

  /** The Secret holds a hash other than `oldHash`, and the database holds that same hash. */
  rotated(deviceKey: string, oldHash: string): boolean {
    const hash = this.secretHash.get(deviceKey);
    return hash !== undefined && hash !== oldHash && this.published.has(deviceKey);
  }

  /** Device keys in the namespace. */
  deviceKeys(): string[] {
    return this.devices.list().map(objectKey);
  }
}

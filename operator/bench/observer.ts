// What the bench sees, straight from the API server (never the operator's cache): watches of the
// MailDevices, their credential Secrets and the password database's shard Secrets, and from them
// which devices are Ready and which have their Secret's current hash in the database.
import { labels, managedByValue, components, secretAnnotations } from "../src/api/names.ts";
import { defaults } from "../src/config.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { resources } from "../src/kube/resources.ts";
import type { Logger } from "../src/log.ts";
import { PassdbView } from "../src/passdb/view.ts";
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
  /** What the database holds, read the way the operator reads it (each changed file parsed once). */
  private readonly database = new PassdbView({
    prefix: defaults.passdbSecretPrefix,
    shards: defaults.passdbShards,
  });
  /** Devices with Ready=True, and devices whose Secret's hash is the database's. */
  readonly ready = new Set<string>();
  readonly published = new Set<string>();
  private readonly waiters = new Set<Waiter>();
  /** Database entries seen, counting every device once. */
  get databaseEntries(): number {
    return this.database.size;
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
    this.shards.onChange((shard, _old, deleted) =>
      this.database.update(shard.metadata.name, deleted ? undefined : shard),
    );
    this.database.onChange((changes) => {
      for (const { entry } of changes) this.recheck(entry.device);
      this.check();
    });
  }

  private recheck(key: string): void {
    const hash = this.secretHash.get(key);
    if (hash !== undefined && this.database.published(key)?.hash === hash) this.published.add(key);
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

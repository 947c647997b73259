// An informer: lists then watches one resource into an in-memory store with indexes, resumes the
// watch from the last resourceVersion after errors and API server restarts, and relists when the
// server says the version is gone (410). Handlers see every change; the store is the cache.
import type { KubeClient, KubeObject, ResourceRef, WatchEvent } from "../kube/client.ts";
import { ApiError } from "../kube/errors.ts";
import type { Logger } from "../log.ts";
import type { StringInterner } from "./intern.ts";
import { backoffDelay } from "./queue.ts";

export type ChangeHandler<T> = (object: T, old: T | undefined, deleted: boolean) => void;
export type IndexFunction<T> = (object: T) => string[];

export function objectKey(object: { metadata: { name: string; namespace?: string | undefined } }): string {
  const { namespace, name } = object.metadata;
  return namespace ? `${namespace}/${name}` : name;
}

/**
 * Is `a` an older resourceVersion than `b`? They are etcd revisions, increasing integers (what
 * client-go's MutationCache relies on too); anything else is never called older.
 */
export function olderVersion(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}

export interface InformerOptions<T> {
  client: KubeClient;
  ref: ResourceRef;
  /** Namespaces to watch, each with its own list/watch; undefined watches ref's scope (all namespaces). */
  namespaces?: readonly string[] | undefined;
  log: Logger;
  labelSelector?: string;
  /** E.g. `metadata.name=x`: what RBAC needs to let a Role's resourceNames allow a list or watch. */
  fieldSelector?: string;
  /** managedFields entries to keep (reduced to manager, subresource and time); the rest are dropped. */
  keepManagedFields?: (entry: { manager?: unknown; subresource?: unknown }) => boolean;
  /** Turns what the API server returned into T; undefined skips the object (logged). */
  parse?: (raw: unknown) => T | undefined;
  /** Shares one instance of each short string among the cached objects (see intern.ts). */
  interner?: StringInterner;
  pageSize?: number;
}

/** Anything with object metadata. */
export interface HasMetadata {
  metadata: { name: string; namespace?: string | undefined; resourceVersion?: string | undefined };
}

export class Informer<T extends HasMetadata> {
  private readonly store = new Map<string, T>();
  private readonly handlers: ChangeHandler<T>[] = [];
  private readonly indexes = new Map<string, { fn: IndexFunction<T>; map: Map<string, Set<string>> }>();
  private syncedResolve!: () => void;
  readonly synced: Promise<void> = new Promise((resolve) => (this.syncedResolve = resolve));
  private hasSyncedFlag = false;
  private unsyncedScopes: number;

  private readonly options: InformerOptions<T>;

  constructor(options: InformerOptions<T>) {
    this.options = options;
    this.unsyncedScopes = options.namespaces?.length ?? 1;
  }

  get hasSynced(): boolean {
    return this.hasSyncedFlag;
  }

  onChange(handler: ChangeHandler<T>): void {
    this.handlers.push(handler);
  }

  addIndex(name: string, fn: IndexFunction<T>): void {
    if (this.indexes.has(name)) return; // every controller's setup may ask for the indexes it reads
    this.indexes.set(name, { fn, map: new Map() });
  }

  /** Every key in the store. */
  keys(): IterableIterator<string> {
    return this.store.keys();
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  get size(): number {
    return this.store.size;
  }

  byIndex(name: string, value: string): T[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`no index ${name}`);
    const objects: T[] = [];
    for (const key of index.map.get(value) ?? []) {
      const object = this.store.get(key);
      if (object) objects.push(object);
    }
    return objects;
  }

  private parse(raw: unknown): T | undefined {
    // The cache keeps what controllers read: managedFields (often most of an object) only as far
    // as a controller asks.
    const meta = (raw as { metadata?: { managedFields?: unknown } } | undefined)?.metadata;
    if (meta?.managedFields !== undefined) {
      const keep = this.options.keepManagedFields;
      const kept =
        keep && Array.isArray(meta.managedFields)
          ? (meta.managedFields as { manager?: unknown; subresource?: unknown; time?: unknown }[])
              .filter(keep)
              .map(({ manager, subresource, time }) => ({ manager, subresource, time }))
          : [];
      if (kept.length > 0) meta.managedFields = kept;
      else delete meta.managedFields;
    }
    this.options.interner?.strings(raw);
    if (!this.options.parse) return raw as T;
    const parsed = this.options.parse(raw);
    if (!parsed)
      this.options.log.warn(
        { object: objectKey(raw as KubeObject) },
        "skipping an object that does not parse",
      );
    return parsed;
  }

  private index(key: string, object: T | undefined, add: boolean): void {
    if (!object) return;
    for (const { fn, map } of this.indexes.values()) {
      for (const value of fn(object)) {
        let keys = map.get(value);
        if (add) {
          if (!keys) map.set(value, (keys = new Set()));
          keys.add(key);
        } else if (keys) {
          keys.delete(key);
          if (keys.size === 0) map.delete(value);
        }
      }
    }
  }

  private upsert(object: T): void {
    const key = objectKey(object);
    const old = this.store.get(key);
    if (old?.metadata.resourceVersion === object.metadata.resourceVersion) return;
    // A watch resumed after an outage replays versions older than a write of ours already stored.
    if (olderVersion(object.metadata.resourceVersion, old?.metadata.resourceVersion)) return;
    this.index(key, old, false);
    this.store.set(key, object);
    this.index(key, object, true);
    for (const handler of this.handlers) handler(object, old, false);
  }

  /**
   * Puts what the API server returned for our write into the store, if the store still holds
   * `baseVersion`, the version the write was computed from. A reconcile that runs before the watch
   * event then compares against what it wrote, not against the version before it (which would
   * skip a needed write). A store that moved on holds something newer already.
   */
  assumeWritten(baseVersion: string | undefined, raw: unknown): void {
    const object = this.parse(raw);
    if (!object || this.store.get(objectKey(object))?.metadata.resourceVersion !== baseVersion) return;
    this.upsert(object);
  }

  private remove(key: string): void {
    const old = this.store.get(key);
    if (!old) return;
    this.index(key, old, false);
    this.store.delete(key);
    for (const handler of this.handlers) handler(old, old, true);
  }

  /** Lists `ref` into the store (dropping what it no longer has in that scope); returns the list's version. */
  private async relist(ref: ResourceRef, signal: AbortSignal, firstSync: boolean): Promise<string> {
    const seen = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion = "";
    do {
      const page = await this.options.client.list<unknown>(ref, {
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
        limit: this.options.pageSize ?? 500,
        continue: continueToken,
      });
      if (signal.aborted) return resourceVersion;
      for (const raw of page.items) {
        const object = this.parse(raw);
        if (object) seen.set(objectKey(object), object);
      }
      continueToken = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (continueToken);
    const inScope = (key: string) => ref.namespace === undefined || key.startsWith(`${ref.namespace}/`);
    for (const key of [...this.store.keys()]) if (inScope(key) && !seen.has(key)) this.remove(key);
    for (const object of seen.values()) this.upsert(object);
    if (firstSync && --this.unsyncedScopes === 0) {
      this.hasSyncedFlag = true;
      this.syncedResolve();
    }
    return resourceVersion;
  }

  /** Watches until the version is gone (relist) or the stream ends (rewatch); counts the events. */
  private async watchOnce(
    ref: ResourceRef,
    version: { rv: string },
    signal: AbortSignal,
  ): Promise<{ gone: boolean; events: number }> {
    let gone = false;
    let events = 0;
    const stream = new AbortController();
    const onAbort = () => stream.abort();
    signal.addEventListener("abort", onAbort);
    try {
      await this.options.client.watch<unknown>(
        ref,
        {
          resourceVersion: version.rv,
          allowWatchBookmarks: true,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
          timeoutSeconds: 240 + Math.floor(Math.random() * 120),
        },
        (event: WatchEvent<unknown>) => {
          if (event.type === "ERROR") {
            const status = event.object as { code?: number; message?: string };
            if (status.code === 410) gone = true;
            else this.options.log.warn({ status }, "watch error event");
            stream.abort();
            return;
          }
          events++;
          const meta = (event.object as KubeObject).metadata;
          if (event.type === "BOOKMARK") {
            version.rv = meta.resourceVersion ?? version.rv;
            return;
          }
          const object = this.parse(event.object);
          if (object && event.type === "DELETED") this.remove(objectKey(object));
          else if (object) this.upsert(object);
          version.rv = meta.resourceVersion ?? version.rv;
        },
        stream.signal,
      );
    } catch (error) {
      if (!stream.signal.aborted) throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    return { gone, events };
  }

  /** Runs until `signal` aborts; never throws. */
  async run(signal: AbortSignal): Promise<void> {
    const { ref, namespaces } = this.options;
    const scopes = namespaces ? namespaces.map((namespace) => ({ ...ref, namespace })) : [ref];
    await Promise.all(scopes.map((scope) => this.runScope(scope, signal)));
  }

  private async runScope(ref: ResourceRef, signal: AbortSignal): Promise<void> {
    let failures = 0;
    let needsList = true;
    let firstSync = true;
    const version = { rv: "" };
    while (!signal.aborted) {
      try {
        if (needsList) {
          version.rv = await this.relist(ref, signal, firstSync);
          firstSync = false;
          needsList = false;
        }
        const started = performance.now();
        const watched = await this.watchOnce(ref, version, signal);
        needsList = watched.gone;
        // client-go's "very short watch": a stream that ends at once with nothing in it (a proxy's
        // idle timeout, a server shutting down) is a failure, or rewatching it is a hot loop.
        if (!watched.gone && watched.events === 0 && performance.now() - started < 1000)
          throw new Error("very short watch: the stream ended at once without an event");
        failures = 0;
      } catch (error) {
        if (signal.aborted) return;
        failures++;
        if (error instanceof ApiError && error.kind === "Gone") needsList = true;
        // At least as long as the server asked (429 and 503 from API Priority and Fairness say).
        const delay = Math.max(
          backoffDelay(failures, { baseMs: 200, maxMs: 30_000 }),
          error instanceof ApiError ? (error.retryAfterSeconds ?? 0) * 1000 : 0,
        );
        this.options.log.warn(
          { resource: ref.plural, namespace: ref.namespace, err: (error as Error).message, retryInMs: delay },
          "list/watch failed; retrying",
        );
        // Abortable: a shutdown must not wait out a backoff of up to 30 s.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, delay);
          signal.addEventListener("abort", done, { once: true });
          function done() {
            clearTimeout(timer);
            signal.removeEventListener("abort", done);
            resolve();
          }
        });
      }
    }
  }
}

// A work queue with controller-runtime's semantics: events for one key merge while it waits,
// a key is never handed to two workers at once (a key added while in flight runs again after),
// failures back off exponentially per key, and keys can be requeued after a delay. Two additions
// for a shared, multi-tenant operator: keys are served round-robin across their namespaces (the
// part of the key before "/"), so one tenant's thousands of keys never delay another tenant's
// one; and keys have a priority: high (a device whose entry was just published) before normal
// (every change) before low (the periodic resync, a safety net that must not hold up changes).

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export const defaultBackoff: BackoffPolicy = { baseMs: 5, maxMs: 5 * 60_000 };

export function backoffDelay(failures: number, policy: BackoffPolicy = defaultBackoff): number {
  return Math.min(policy.baseMs * 2 ** Math.max(0, failures - 1), policy.maxMs);
}

export type Priority = "high" | "normal" | "low";
/** Served in this order. */
const levels: readonly Priority[] = ["high", "normal", "low"];
const rank = (priority: Priority) => levels.indexOf(priority);

/** The fairness group of a key: its namespace (`ns/name`), or "" for cluster-scoped keys. */
export function fairnessGroup(key: string): string {
  const slash = key.indexOf("/");
  return slash < 0 ? "" : key.slice(0, slash);
}

/** A FIFO of strings: Array.shift moves every element, which at 50,000 keys was the queue's main cost. */
class Fifo {
  private items: string[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(key: string): void {
    this.items.push(key);
  }

  shift(): string | undefined {
    if (this.head >= this.items.length) return undefined;
    const key = this.items[this.head++];
    // Drop the consumed front now and then: amortized O(1), and no unbounded growth.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return key;
  }
}

/** FIFO queues per group, served round-robin. Entries may be stale (see WorkQueue.queued). */
class FairLevel {
  private readonly groups = new Map<string, Fifo>();
  /** Groups with waiting keys, in serving order. */
  private ring = new Fifo();
  size = 0;

  push(key: string): void {
    const group = fairnessGroup(key);
    let keys = this.groups.get(group);
    if (!keys) {
      this.groups.set(group, (keys = new Fifo()));
      this.ring.push(group);
    }
    keys.push(key);
    this.size++;
  }

  shift(): string | undefined {
    const group = this.ring.shift();
    if (group === undefined) return undefined;
    const keys = this.groups.get(group)!;
    const key = keys.shift()!;
    this.size--;
    if (keys.length > 0) this.ring.push(group);
    else this.groups.delete(group);
    return key;
  }

  clear(): void {
    this.groups.clear();
    this.ring = new Fifo();
    this.size = 0;
  }
}

export class WorkQueue {
  private readonly levels = new Map<Priority, FairLevel>(levels.map((l) => [l, new FairLevel()]));
  /** Keys waiting in a level, and which one; a level's entry for another level is stale. */
  private readonly queued = new Map<string, Priority>();
  private readonly dirty = new Map<string, Priority>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;
  /** When each key became due, for queue wait-time metrics. */
  private readonly addedAt = new Map<string, number>();

  private readonly backoff: BackoffPolicy;

  constructor(backoff: BackoffPolicy = defaultBackoff) {
    this.backoff = backoff;
  }

  get depth(): number {
    return this.queued.size;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  add(key: string, priority: Priority = "normal"): void {
    if (this.shuttingDown) return;
    const was = this.dirty.get(key);
    if (was !== undefined && rank(was) <= rank(priority)) return; // waiting already, as early or earlier
    this.dirty.set(key, priority);
    if (this.processing.has(key)) return; // done() puts it back
    this.enqueue(key, priority);
  }

  private enqueue(key: string, priority: Priority): void {
    if (!this.addedAt.has(key)) this.addedAt.set(key, performance.now());
    const waiter = this.waiters.shift();
    if (waiter) {
      this.queued.delete(key);
      waiter(key);
      return;
    }
    // Raising a waiting key's priority leaves a stale entry behind in the lower level.
    this.queued.set(key, priority);
    this.levels.get(priority)!.push(key);
  }

  /** Adds `key` after `delayMs`; of several pending delays for one key the earliest wins. */
  addAfter(key: string, delayMs: number, priority: Priority = "normal"): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key, priority);
    const at = Date.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key, priority);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /**
   * Adds `key` after its exponential backoff, at most `maxDelayMs` (or `minDelayMs`, if longer);
   * returns the delay.
   */
  addRateLimited(key: string, minDelayMs = 0, maxDelayMs = this.backoff.maxMs): number {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    const delay = Math.max(Math.min(backoffDelay(failures, this.backoff), maxDelayMs), minDelayMs);
    this.addAfter(key, delay);
    return delay;
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Forgets the failure history of `key` after a success. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  private take(): string | undefined {
    for (const priority of levels) {
      const level = this.levels.get(priority)!;
      for (let key = level.shift(); key !== undefined; key = level.shift()) {
        if (this.queued.get(key) !== priority) continue; // stale: served from a higher level
        this.queued.delete(key);
        return key;
      }
    }
    return undefined;
  }

  /** The next key, or undefined once the queue shuts down. The caller must call done(key). */
  async get(): Promise<{ key: string; waitedMs: number } | undefined> {
    let key = this.take();
    if (key === undefined) {
      if (this.shuttingDown) return undefined;
      key = await new Promise<string | undefined>((resolve) => this.waiters.push(resolve));
      if (key === undefined) return undefined;
    }
    this.dirty.delete(key);
    this.processing.add(key);
    const waitedMs = performance.now() - (this.addedAt.get(key) ?? performance.now());
    this.addedAt.delete(key);
    return { key, waitedMs };
  }

  done(key: string): void {
    this.processing.delete(key);
    const priority = this.dirty.get(key);
    if (priority !== undefined && !this.shuttingDown) this.enqueue(key, priority);
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
    for (const level of this.levels.values()) level.clear();
    this.queued.clear();
  }
}

// A work queue with controller-runtime's semantics: events for one key merge while it waits,
// a key is never handed to two workers at once (a key added while in flight runs again after),
// failures back off exponentially per key, and keys can be requeued after a delay.

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export const defaultBackoff: BackoffPolicy = { baseMs: 5, maxMs: 5 * 60_000 };

export function backoffDelay(failures: number, policy: BackoffPolicy = defaultBackoff): number {
  return Math.min(policy.baseMs * 2 ** Math.max(0, failures - 1), policy.maxMs);
}

export class WorkQueue {
  private readonly order: string[] = [];
  private readonly dirty = new Set<string>();
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
    return this.order.length;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // done() puts it back
    this.addedAt.set(key, performance.now());
    const waiter = this.waiters.shift();
    if (waiter) waiter(key);
    else this.order.push(key);
  }

  /** Adds `key` after `delayMs`; of several pending delays for one key the earliest wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
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

  /** The next key, or undefined once the queue shuts down. The caller must call done(key). */
  async get(): Promise<{ key: string; waitedMs: number } | undefined> {
    let key = this.order.shift();
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
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.addedAt.set(key, performance.now());
      const waiter = this.waiters.shift();
      if (waiter) waiter(key);
      else this.order.push(key);
    }
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
    this.order.length = 0;
  }
}

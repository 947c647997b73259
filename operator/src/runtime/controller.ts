// Runs a reconcile function over a work queue: level-based (only the key travels), a fixed
// number of workers, exponential backoff on errors (a separate error policy decides), and
// requeue after a delay when reconcile asks for it.
import { randomBytes } from "node:crypto";
import { ApiError, type ApiErrorKind } from "../kube/errors.ts";
import type { Logger } from "../log.ts";
import { WorkQueue, type BackoffPolicy } from "./queue.ts";

/** What reconcile asks for next: nothing until the next change, or another pass after a delay. */
export interface Action {
  requeueAfterMs?: number;
}
export const awaitChange: Action = {};
export const requeueAfter = (ms: number): Action => ({ requeueAfterMs: ms });

export interface ReconcileContext {
  log: Logger;
  reconcileId: string;
}

export type Reconcile = (key: string, context: ReconcileContext) => Promise<Action>;

export interface ControllerMetrics {
  reconciled(controller: string, result: "success" | "error" | "requeue_after", seconds: number): void;
  queueWaited(controller: string, seconds: number): void;
  retried(controller: string): void;
}

export interface ControllerOptions {
  name: string;
  reconcile: Reconcile;
  log: Logger;
  workers?: number;
  backoff?: BackoffPolicy;
  metrics?: ControllerMetrics;
}

/** Failures of the API server (throttled, failing, unreachable), not of the object. */
const serverUnavailable = new Set<ApiErrorKind>(["TooManyRequests", "ServerError", "Unavailable"]);

/**
 * How long a key waits at most after the API server failed it: the server's own Retry-After
 * and the exponential backoff keep the pressure off it, and once it is back, every key is retried
 * within this. Without the cap, a minute of throttling left keys waiting the full 5 minutes.
 */
export const serverUnavailableMaxDelayMs = 30_000;

/** The error policy: how long to wait before retrying a failed key. */
export function retryDelayFor(error: unknown, queue: WorkQueue, key: string): number {
  const serverAsked =
    error instanceof ApiError && error.retryAfterSeconds ? error.retryAfterSeconds * 1000 : 0;
  const cap =
    error instanceof ApiError && serverUnavailable.has(error.kind) ? serverUnavailableMaxDelayMs : undefined;
  return queue.addRateLimited(key, serverAsked, cap);
}

export class Controller {
  readonly queue: WorkQueue;
  private running: Promise<void>[] = [];

  private readonly options: ControllerOptions;

  constructor(options: ControllerOptions) {
    this.options = options;
    this.queue = new WorkQueue(options.backoff);
  }

  get name(): string {
    return this.options.name;
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  start(): void {
    const workers = this.options.workers ?? 4;
    for (let i = 0; i < workers; i++) this.running.push(this.work());
  }

  private async work(): Promise<void> {
    const { name, reconcile, metrics } = this.options;
    for (;;) {
      const item = await this.queue.get();
      if (!item) return;
      const { key, waitedMs } = item;
      metrics?.queueWaited(name, waitedMs / 1000);
      const reconcileId = randomBytes(6).toString("hex");
      const log = this.options.log.child({ controller: name, key, reconcileId });
      const started = performance.now();
      try {
        const action = await reconcile(key, { log, reconcileId });
        this.queue.forget(key);
        if (action.requeueAfterMs !== undefined) this.queue.addAfter(key, action.requeueAfterMs);
        metrics?.reconciled(
          name,
          action.requeueAfterMs !== undefined ? "requeue_after" : "success",
          (performance.now() - started) / 1000,
        );
      } catch (error) {
        const delay = retryDelayFor(error, this.queue, key);
        metrics?.reconciled(name, "error", (performance.now() - started) / 1000);
        metrics?.retried(name);
        const kind = error instanceof ApiError ? error.kind : "Internal";
        log.warn({ err: (error as Error).message, errorKind: kind, retryInMs: delay }, "reconcile failed");
      } finally {
        this.queue.done(key);
      }
    }
  }

  /** Stops taking keys and waits for reconciles in flight. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.running);
  }
}

// Runs a reconcile function over a work queue: level-based (only the key travels), a fixed
// number of workers, and what follows an error decided by the controller's own error policy
// (a separate function, as in kube-rs): retry with backoff, or give up on a terminal error
// until the object changes again (controller-runtime's TerminalError).
import { randomBytes } from "node:crypto";
import { ApiError, type ApiErrorKind } from "../kube/errors.ts";
import type { Logger } from "../log.ts";
import { WorkQueue, type BackoffPolicy, type Priority } from "./queue.ts";

/** What reconcile asks for next. */
export type Action =
  /** Nothing until the next change. */
  | { type: "await" }
  /** Another pass after a fixed delay. */
  | { type: "requeue"; afterMs: number }
  /** Another pass after the key's exponential backoff (a condition that may last: look less often). */
  | { type: "backoff" };
export const awaitChange: Action = { type: "await" };
export const requeueAfter = (ms: number): Action => ({ type: "requeue", afterMs: ms });
export const requeueWithBackoff: Action = { type: "backoff" };

/**
 * An error that retrying cannot fix (the object or our configuration must change first): it is
 * reported, and the key waits for its next change or the periodic resync instead of a backoff.
 */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
}

export interface ReconcileContext {
  log: Logger;
  reconcileId: string;
}

export type Reconcile = (key: string, context: ReconcileContext) => Promise<Action>;

/** After an error: retry after the key's backoff (at least `minDelayMs`, at most `maxDelayMs`), or not. */
export type ErrorVerdict = { retry: true; minDelayMs: number; maxDelayMs?: number } | { retry: false };
export type ErrorPolicy = (error: unknown) => ErrorVerdict;

export interface ControllerMetrics {
  reconciled(
    controller: string,
    result: "success" | "error" | "requeue_after" | "terminal",
    seconds: number,
  ): void;
  queueWaited(controller: string, seconds: number): void;
  retried(controller: string): void;
  /** Reads the queue's depth when scraped. */
  watchQueue?(controller: string, queue: WorkQueue): void;
}

export interface ControllerOptions {
  name: string;
  reconcile: Reconcile;
  log: Logger;
  workers?: number;
  backoff?: BackoffPolicy;
  metrics?: ControllerMetrics;
  errorPolicy?: ErrorPolicy;
}

/** Failures of the API server (throttled, failing, unreachable), not of the object. */
const serverUnavailable = new Set<ApiErrorKind>(["TooManyRequests", "ServerError", "Unavailable"]);
/** The API server refused the request itself: the same request would be refused again. */
const refusedForGood = new Set<ApiErrorKind>(["Invalid", "Forbidden", "BadRequest"]);

/**
 * How long a key waits at most after the API server failed it: the server's own Retry-After
 * and the exponential backoff keep the pressure off it, and once it is back, every key is retried
 * within this. Without the cap, a minute of throttling left keys waiting the full 5 minutes.
 */
export const serverUnavailableMaxDelayMs = 30_000;

/**
 * The default error policy: terminal errors and requests the API server refused as invalid or
 * forbidden wait for a change (or the resync); anything else backs off, honouring Retry-After.
 */
export function defaultErrorPolicy(error: unknown): ErrorVerdict {
  if (error instanceof TerminalError) return { retry: false };
  if (!(error instanceof ApiError)) return { retry: true, minDelayMs: 0 };
  if (refusedForGood.has(error.kind)) return { retry: false };
  return {
    retry: true,
    minDelayMs: (error.retryAfterSeconds ?? 0) * 1000,
    maxDelayMs: serverUnavailable.has(error.kind) ? serverUnavailableMaxDelayMs : undefined,
  };
}

export function errorKind(error: unknown): string {
  if (error instanceof ApiError) return error.kind;
  if (error instanceof TerminalError) return "Terminal";
  return "Internal";
}

export class Controller {
  readonly queue: WorkQueue;
  private running: Promise<void>[] = [];
  private started = false;
  /** Reconcile ids (log correlation): a random prefix per process and a count, no CSPRNG call each. */
  private readonly idPrefix = randomBytes(4).toString("hex");
  private reconciles = 0;

  private readonly options: ControllerOptions;

  constructor(options: ControllerOptions) {
    this.options = options;
    this.queue = new WorkQueue(options.backoff);
  }

  get name(): string {
    return this.options.name;
  }

  enqueue(key: string, priority: Priority = "normal"): void {
    this.queue.add(key, priority);
  }

  enqueueAfter(key: string, delayMs: number): void {
    this.queue.addAfter(key, delayMs);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    const workers = this.options.workers ?? 4;
    for (let i = 0; i < workers; i++) this.running.push(this.work());
  }

  private async work(): Promise<void> {
    const { name, reconcile, metrics, errorPolicy = defaultErrorPolicy } = this.options;
    for (;;) {
      const item = await this.queue.get();
      if (!item) return;
      const { key, waitedMs } = item;
      metrics?.queueWaited(name, waitedMs / 1000);
      const reconcileId = `${this.idPrefix}-${(++this.reconciles).toString(36)}`;
      const log = this.options.log.child({ controller: name, key, reconcileId });
      const started = performance.now();
      const seconds = () => (performance.now() - started) / 1000;
      try {
        const action = await reconcile(key, { log, reconcileId });
        if (action.type === "backoff") {
          this.queue.addRateLimited(key);
          metrics?.reconciled(name, "requeue_after", seconds());
        } else {
          this.queue.forget(key);
          if (action.type === "requeue") this.queue.addAfter(key, action.afterMs);
          metrics?.reconciled(name, action.type === "requeue" ? "requeue_after" : "success", seconds());
        }
      } catch (error) {
        const verdict = errorPolicy(error);
        const err = (error as Error).message;
        if (verdict.retry) {
          const delay = this.queue.addRateLimited(key, verdict.minDelayMs, verdict.maxDelayMs);
          metrics?.reconciled(name, "error", seconds());
          metrics?.retried(name);
          log.warn({ err, errorKind: errorKind(error), retryInMs: delay }, "reconcile failed");
        } else {
          this.queue.forget(key);
          metrics?.reconciled(name, "terminal", seconds());
          log.error({ err, errorKind: errorKind(error) }, "reconcile failed for good; waiting for a change");
        }
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

/**
 * A controller as its module's setup returns it (controller-runtime's SetupWithManager): the
 * controller with its triggers registered, and every key it owns, for the first pass after start
 * and the periodic resync.
 */
export interface ControllerSetup {
  controller: Controller;
  keys: () => Iterable<string>;
}

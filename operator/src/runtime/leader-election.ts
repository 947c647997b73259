// Leader election on a coordination.k8s.io/v1 Lease, the algorithm of client-go's leaderelection
// package: a candidate takes the Lease when it is free or its holder stopped renewing, the leader
// renews it every retry period, and a leader that cannot renew within the renew deadline gives up.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { KubeClient } from "../kube/client.ts";
import type { Lease, LeaseSpec } from "../kube/objects.ts";
import { inNamespace, named, resources } from "../kube/resources.ts";
import { ApiError, isAlreadyExists, isConflict, isNotFound } from "../kube/errors.ts";
import type { Logger } from "../log.ts";

/** controller-runtime's defaults (and kube-controller-manager's). */
export const defaultLeaseTimings = {
  /** How long others wait, after they last saw the Lease change, before they take it. */
  leaseDurationMs: 15_000,
  /** How long the leader keeps reconciling without a successful renewal. */
  renewDeadlineMs: 10_000,
  /** How often candidates try to take the Lease and the leader renews it. */
  retryPeriodMs: 2_000,
} as const;

export type LeaseTimings = { [K in keyof typeof defaultLeaseTimings]: number };

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** Unique among candidates: hostname (the pod name) and a random suffix, see `leaderIdentity`. */
  identity: string;
  log: Logger;
  timings?: LeaseTimings;
  /** Called once, when this candidate becomes the leader. */
  onStartedLeading: () => void;
  /**
   * Called once, when the leader could not renew within the renew deadline. The caller must stop
   * writing at once (controller-runtime exits): another candidate may take the Lease soon.
   */
  onStoppedLeading: () => void;
}

/** Like controller-runtime: the hostname (a pod's name) and a random suffix, unique per process. */
export function leaderIdentity(): string {
  return `${hostname()}_${randomBytes(4).toString("hex")}`;
}

/** metav1.MicroTime wants six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });

export class LeaderElector {
  private readonly options: LeaderElectorOptions;
  private readonly timings: LeaseTimings;
  /** The Lease as last read or written, and when (monotonic ms) it was first seen in that state. */
  private observed: Lease | undefined;
  private observedAt = 0;
  private leading = false;
  private lost = false;
  private acquiring = true;
  private readonly stopAcquire = new AbortController();
  private readonly stopRenew = new AbortController();
  private acquireLoop: Promise<void> = Promise.resolve();
  private renewLoop: Promise<void> = Promise.resolve();
  private lastLeader: string | undefined;

  constructor(options: LeaderElectorOptions) {
    this.options = options;
    this.timings = options.timings ?? defaultLeaseTimings;
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = this.timings;
    // The leader must give up before others may take over, and must get several tries before that.
    if (!(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > retryPeriodMs && retryPeriodMs > 0))
      throw new Error("leader election needs leaseDuration > renewDeadline > retryPeriod > 0");
  }

  get identity(): string {
    return this.options.identity;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts campaigning in the background; leadership is reported through the callbacks. */
  start(): void {
    this.acquireLoop = this.acquire();
  }

  /**
   * Gives up campaigning: a candidate that is not the leader now never becomes it (a Lease taken
   * by an attempt already in flight is released at once). A leader keeps renewing until stop().
   */
  async stopAcquiring(): Promise<void> {
    this.acquiring = false;
    this.stopAcquire.abort();
    await this.acquireLoop;
  }

  /** Stops renewing and, when `release` is set and this is the leader, frees the Lease for others at once. */
  async stop({ release }: { release: boolean }): Promise<void> {
    await this.stopAcquiring();
    this.stopRenew.abort();
    await this.renewLoop;
    if (release && this.leading) await this.release();
    this.leading = false;
  }

  private async acquire(): Promise<void> {
    const { log } = this.options;
    const { retryPeriodMs } = this.timings;
    log.info({ lease: `${this.options.namespace}/${this.options.name}` }, "waiting to become the leader");
    while (this.acquiring) {
      const sentAt = performance.now();
      const taken = await this.tryAcquireOrRenew(AbortSignal.timeout(retryPeriodMs * 5)).catch(
        (error: unknown) => {
          log.warn({ err: (error as Error).message }, "could not read or take the leader Lease");
          return false;
        },
      );
      if (taken && !this.acquiring) {
        await this.release(); // stopAcquiring() came while the winning request was in flight
        return;
      }
      if (taken) {
        this.leading = true;
        log.info({ identity: this.identity }, "became the leader");
        this.renewLoop = this.renew(sentAt);
        this.options.onStartedLeading();
        return;
      }
      // client-go jitters the retry period so that candidates do not move in lockstep.
      await sleep(retryPeriodMs * (1 + 0.2 * Math.random()), this.stopAcquire.signal);
    }
  }

  /** Renews every retry period; gives up when no renewal succeeded within the renew deadline. */
  private async renew(lastRenewal: number): Promise<void> {
    const { log } = this.options;
    const { renewDeadlineMs, retryPeriodMs } = this.timings;
    const signal = this.stopRenew.signal;
    let wait = retryPeriodMs;
    while (!signal.aborted) {
      await sleep(wait, signal);
      if (signal.aborted) return;
      const sentAt = performance.now();
      // Counted from when the last successful renewal was sent: others saw it no earlier than that.
      const remaining = lastRenewal + renewDeadlineMs - sentAt;
      let renewed = false;
      let retryAfterMs = 0;
      if (remaining > 0) {
        renewed = await this.tryAcquireOrRenew(
          AbortSignal.any([signal, AbortSignal.timeout(Math.ceil(remaining))]),
        ).catch((error: unknown) => {
          if (error instanceof ApiError) retryAfterMs = (error.retryAfterSeconds ?? 0) * 1000;
          if (!signal.aborted)
            log.warn(
              { err: (error as Error).message, remainingMs: Math.round(remaining) },
              "could not renew the leader Lease",
            );
          return false;
        });
      }
      if (signal.aborted) return;
      if (renewed) {
        lastRenewal = sentAt;
        wait = retryPeriodMs;
        continue;
      }
      if (performance.now() - lastRenewal >= renewDeadlineMs) {
        this.leading = false;
        this.lost = true;
        log.error(
          { renewDeadlineMs, sinceLastRenewalMs: Math.round(performance.now() - lastRenewal) },
          "leader election lost: the Lease was not renewed within the renew deadline",
        );
        this.options.onStoppedLeading();
        return;
      }
      // Unlike client-go, try again sooner than a retry period (but not before the server asks):
      // a throttled API server that refuses a third of all requests should not cost the Lease.
      wait = Math.max(retryPeriodMs / 4, retryAfterMs);
    }
  }

  /** One step of client-go's tryAcquireOrRenew: true when this candidate holds the Lease afterwards. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { client, identity, namespace, name } = this.options;
    const lease = named(resources.leases, namespace, name);
    const now = new Date();
    const mine: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.timings.leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    const held = this.observed;
    if (this.leading && held?.spec?.holderIdentity === identity) {
      // Renewing: nobody else may have changed a Lease we hold, so one PUT over the version we
      // wrote last does (half the requests a throttled server can refuse); a conflict means
      // someone did, and the full read below decides.
      try {
        const spec = held.spec;
        const renewed = await client.replace<Lease>(
          lease,
          {
            ...held,
            spec: { ...spec, renewTime: mine.renewTime, leaseDurationSeconds: mine.leaseDurationSeconds },
          },
          signal,
        );
        this.observe(renewed);
        return true;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
    let current: Lease;
    try {
      current = await client.get<Lease>(lease, signal);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      try {
        const created = await client.create<Lease>(
          inNamespace(resources.leases, namespace),
          { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace }, spec: mine },
          signal,
        );
        this.observe(created);
        return true;
      } catch (createError) {
        if (isAlreadyExists(createError)) return false; // another candidate was quicker
        throw createError;
      }
    }
    this.observe(current);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const durationMs = (spec.leaseDurationSeconds ?? 0) * 1000;
    // Expiry is judged by our own clock, from when we saw the Lease change: no clock skew matters.
    if (holder !== "" && holder !== identity && this.observedAt + durationMs > performance.now())
      return false;
    const next: LeaseSpec =
      holder === identity
        ? { ...mine, acquireTime: spec.acquireTime, leaseTransitions: spec.leaseTransitions ?? 0 }
        : { ...mine, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
    try {
      // A PUT with the resourceVersion we read: of two candidates racing, exactly one wins.
      const updated = await client.replace<Lease>(lease, { ...current, spec: next }, signal);
      this.observe(updated);
      return true;
    } catch (error) {
      if (isConflict(error)) return false;
      throw error;
    }
  }

  private observe(lease: Lease): void {
    const before = JSON.stringify(this.observed?.spec ?? null);
    if (before !== JSON.stringify(lease.spec ?? null)) this.observedAt = performance.now();
    this.observed = lease;
    const holder = lease.spec?.holderIdentity ?? "";
    if (holder !== this.lastLeader) {
      this.lastLeader = holder;
      if (holder !== "" && holder !== this.identity)
        this.options.log.info({ leader: holder }, "the leader changed");
    }
  }

  /** client-go's ReleaseOnCancel: an empty holder and a 1 s duration, so a candidate takes over at once. */
  private async release(): Promise<void> {
    const { client, namespace, name, log } = this.options;
    if (this.lost || this.observed?.spec?.holderIdentity !== this.identity) return;
    const ref = named(resources.leases, namespace, name);
    const signal = AbortSignal.timeout(this.timings.renewDeadlineMs);
    // A renewal cut off by stop() may still have reached the server, leaving our version behind:
    // a conflict is then our own write; read the Lease again and release it if it is still ours.
    for (let attempt = 1; ; attempt++) {
      const held = this.observed;
      const now = microTime(new Date());
      try {
        const released = await client.replace<Lease>(
          ref,
          {
            ...held,
            spec: {
              holderIdentity: "",
              leaseDurationSeconds: 1,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: held?.spec?.leaseTransitions ?? 0,
            },
          },
          signal,
        );
        this.observe(released);
        log.info("released the leader Lease");
        return;
      } catch (error) {
        const conflict = error instanceof ApiError && isConflict(error);
        if (conflict && attempt === 1) {
          const current = await client.get<Lease>(ref, signal).catch(() => undefined);
          if (current?.spec?.holderIdentity === this.identity) {
            this.observe(current);
            continue;
          }
        }
        // Someone else holds it already, or it expires after its duration.
        log.warn({ err: (error as Error).message, conflict }, "could not release the leader Lease");
        return;
      }
    }
  }
}

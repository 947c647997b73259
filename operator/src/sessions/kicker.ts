// Kicks a mail address's sessions whenever the database stops accepting one of its passwords,
// on its own queue: a slow or failing Dovecot never delays revoking the password itself. Each
// kick first flushes the address from Dovecot's auth cache (a cached login must not outlive its
// password); a change that revokes nothing (a new device) only flushes. Failures retry with
// backoff; every outcome is reported to a callback (events, conditions).
import { readFile } from "node:fs/promises";
import type { Logger } from "../log.ts";
import { isValidMailAddress } from "../passdb/format.ts";
import { Controller, awaitChange, requeueAfter } from "../runtime/controller.ts";
import { controllerNames } from "../context.ts";
import { DoveadmClient, type KickResult, type SessionCutter } from "./doveadm.ts";

export interface KickOutcome extends KickResult {
  at: Date;
}

export interface SessionKickerOptions {
  cutter: SessionCutter;
  log: Logger;
  /**
   * Kick once more after this delay (0: never): a mounted Secret volume reaches Dovecot only at the
   * kubelet's next sync, and a client reconnecting before that could still log in with the old
   * password. passdb-sync kicks after writing the file instead, so beside it no repeat is needed.
   */
  repeatAfterMs: number;
}

/** What an address needs: its auth cache entries dropped, or that and its sessions cut. */
type SessionAction = "flush" | "kick";

export class SessionKicker {
  private readonly controller: Controller;
  private readonly outcomes = new Map<string, KickOutcome>();
  private readonly repeats = new Set<string>();
  private readonly pending = new Map<string, SessionAction>();
  private readonly listeners: ((address: string, outcome: KickOutcome) => void)[] = [];

  constructor(options: SessionKickerOptions) {
    this.controller = new Controller({
      name: controllerNames.sessions,
      log: options.log,
      workers: 2,
      backoff: { baseMs: 500, maxMs: 60_000 },
      reconcile: async (address) => {
        // A repeat (requeued below) has no pending action: it kicks again.
        const action = this.pending.get(address) ?? "kick";
        this.pending.delete(address);
        let result: KickResult;
        try {
          result = await options.cutter.flushAuthCache(address);
          if (result.ok && action === "kick") result = await options.cutter.kick(address);
        } catch (error) {
          result = { ok: false, message: `doveadm could not be reached: ${(error as Error).message}` };
        }
        const outcome = { ...result, at: new Date() };
        if (action === "kick" || !result.ok) {
          this.outcomes.set(address, outcome);
          for (const listener of this.listeners) listener(address, outcome);
        }
        if (!result.ok) {
          // Retried with backoff; a kick asked meanwhile stays a kick.
          if (this.pending.get(address) !== "kick") this.pending.set(address, action);
          throw new Error(result.message);
        }
        if (this.repeats.delete(address) && options.repeatAfterMs > 0)
          return requeueAfter(options.repeatAfterMs);
        return awaitChange;
      },
    });
  }

  /** Tells `listener` of every kick's outcome (and of failed flushes). */
  onResult(listener: (address: string, outcome: KickOutcome) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Asks for the address's sessions to be cut (merged with any kick already waiting). Only a
   * well-formed mail address, from the operator's own database, is ever sent: doveadm matches
   * user masks with wildcards.
   */
  kick(address: string): void {
    if (!isValidMailAddress(address)) return;
    this.pending.set(address, "kick");
    this.repeats.add(address);
    this.controller.enqueue(address);
  }

  /** Asks for the address's auth cache entries to be dropped, without cutting its sessions. */
  flush(address: string): void {
    if (!isValidMailAddress(address)) return;
    if (this.pending.get(address) !== "kick") this.pending.set(address, "flush");
    this.controller.enqueue(address);
  }

  lastOutcome(address: string): KickOutcome | undefined {
    return this.outcomes.get(address);
  }

  start(): void {
    this.controller.start();
  }

  stop(): Promise<void> {
    return this.controller.stop();
  }
}

/** A cutter that reads the API key file at each call, so a rotated key Secret is picked up. */
export function doveadmFromFile(url: string, apiKeyFile: string): SessionCutter {
  const client = async () => new DoveadmClient(url, await readFile(apiKeyFile, "utf8"));
  return {
    kick: async (address: string) => (await client()).kick(address),
    flushAuthCache: async (address: string) => (await client()).flushAuthCache(address),
  };
}

// Kicks a mail address's sessions whenever the database stops accepting one of its passwords,
// on its own queue: a slow or failing Dovecot never delays revoking the password itself.
// Failures retry with backoff; every outcome is reported to a callback (events, conditions).
import { readFile } from "node:fs/promises";
import type { Logger } from "../log.ts";
import { isValidMailAddress } from "../passdb/format.ts";
import { Controller, awaitChange, requeueAfter } from "../runtime/controller.ts";
import { DoveadmClient, type KickResult, type SessionCutter } from "./doveadm.ts";

export interface KickOutcome extends KickResult {
  at: Date;
}

export interface SessionKickerOptions {
  cutter: SessionCutter;
  log: Logger;
  /**
   * Kick once more after this delay: a mounted Secret volume reaches Dovecot only at the kubelet's
   * next sync, and a client reconnecting before that could still log in with the old password.
   */
  repeatAfterMs: number;
}

export class SessionKicker {
  private readonly controller: Controller;
  private readonly outcomes = new Map<string, KickOutcome>();
  private readonly repeats = new Set<string>();
  private readonly listeners: ((address: string, outcome: KickOutcome) => void)[] = [];

  constructor(options: SessionKickerOptions) {
    this.controller = new Controller({
      name: "devicepass-sessions",
      log: options.log,
      workers: 2,
      backoff: { baseMs: 500, maxMs: 60_000 },
      reconcile: async (address) => {
        let result: KickResult;
        try {
          result = await options.cutter.kick(address);
        } catch (error) {
          result = { ok: false, message: `doveadm could not be reached: ${(error as Error).message}` };
        }
        const outcome = { ...result, at: new Date() };
        this.outcomes.set(address, outcome);
        for (const listener of this.listeners) listener(address, outcome);
        if (!result.ok) throw new Error(result.message);
        if (this.repeats.delete(address) && options.repeatAfterMs > 0)
          return requeueAfter(options.repeatAfterMs);
        return awaitChange;
      },
    });
  }

  /** Tells `listener` of every kick's outcome. */
  onResult(listener: (address: string, outcome: KickOutcome) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Asks for the address's sessions to be cut (merged with any kick already waiting). Only a
   * well-formed mail address, from the operator's own database, is ever sent: doveadm matches
   * kick masks with wildcards.
   */
  kick(address: string): void {
    if (!isValidMailAddress(address)) return;
    this.repeats.add(address);
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

/** A cutter that reads the API key file at each kick, so a rotated key Secret is picked up. */
export function doveadmFromFile(url: string, apiKeyFile: string): SessionCutter {
  return {
    async kick(address: string) {
      const key = await readFile(apiKeyFile, "utf8");
      return new DoveadmClient(url, key).kick(address);
    },
  };
}

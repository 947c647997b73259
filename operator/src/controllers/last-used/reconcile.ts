// The last-used controller: writes status.lastUsedAt of a MailDevice from the latest login the
// passdb-sync reports name for it (the devices' last logins at each Dovecot pod), by server-side
// apply of the status subresource under its own field manager, so that it never contends with the
// MailDevice controller's status. At most one write per device per precision interval (decide.ts),
// whatever the login rate, also across restarts (its managedFields entry says when it last wrote).
import { apiVersion, kinds } from "../../api/names.ts";
import type { MailDevice } from "../../api/schemas.ts";
import { controllerNames, type OperatorContext } from "../../context.ts";
import { isNotFound } from "../../kube/errors.ts";
import { named, resources } from "../../kube/resources.ts";
import { awaitChange, requeueAfter, type Reconcile } from "../../runtime/controller.ts";
import { decideLastUsed } from "./decide.ts";

const fieldManager = controllerNames.lastUsed;

interface ManagedFieldsEntry {
  manager?: unknown;
  subresource?: unknown;
  time?: unknown;
}

/** Keeps this controller's status entry of a MailDevice's managedFields (the cache drops the rest). */
export function isLastUsedEntry(entry: ManagedFieldsEntry): boolean {
  return entry.manager === fieldManager && entry.subresource === "status";
}

/** When this controller last changed the status of `device` (its managedFields entry), if it ever did. */
export function lastStatusWrite(device: MailDevice): Date | undefined {
  const entries = (device.metadata as { managedFields?: unknown }).managedFields;
  if (!Array.isArray(entries)) return undefined;
  const entry = (entries as ManagedFieldsEntry[]).find(
    (e) => isLastUsedEntry(e) && typeof e.time === "string",
  );
  const time = entry ? new Date(entry.time as string) : undefined;
  return time && !Number.isNaN(time.getTime()) ? time : undefined;
}

/** The logins the reports name, and the writes not yet seen back in the cache. */
export class LastUsedState {
  /** Latest reported login per device key. */
  logins = new Map<string, Date>();
  /** Our writes not yet seen back in the cache: the budget holds before the watch catches up. */
  readonly written = new Map<string, { at: Date; lastUsedAt: Date }>();

  /** Takes the logins the reports name now; returns the devices whose latest login moved. */
  refresh(ctx: Pick<OperatorContext, "mailServer">): string[] {
    const logins = ctx.mailServer.logins();
    const moved = [...logins].filter(([device, at]) => this.logins.get(device)?.getTime() !== at.getTime());
    this.logins = logins;
    return moved.map(([device]) => device);
  }
}

export function reconcileLastUsed(ctx: OperatorContext, state: LastUsedState): Reconcile {
  return async (key) => {
    const device = ctx.cache.devices.get(key);
    if (!device || device.metadata.deletionTimestamp) return awaitChange;
    const ours = state.written.get(key);
    const status = device.status?.lastUsedAt ? new Date(device.status.lastUsedAt) : undefined;
    // Whichever is newer: what the cache shows, or what we wrote and it has not shown yet.
    const current = ours && (!status || status < ours.lastUsedAt) ? ours.lastUsedAt : status;
    const recorded = lastStatusWrite(device);
    const lastWrite = ours && (!recorded || recorded < ours.at) ? ours.at : recorded;
    const decision = decideLastUsed({
      login: state.logins.get(key),
      current,
      lastWrite,
      created: new Date(device.metadata.creationTimestamp),
      now: ctx.now(),
      precisionMs: ctx.config.lastUsedPrecisionMs,
    });
    if (decision.kind === "none") return awaitChange;
    if (decision.kind === "wait") return requeueAfter(decision.ms);
    const lastUsedAt = decision.lastUsedAt.toISOString().replace(/\.\d{3}Z$/, "Z");
    try {
      await ctx.client.apply(
        named(resources.mailDevices, device.metadata.namespace, device.metadata.name, "status"),
        {
          apiVersion,
          kind: kinds.mailDevice.kind,
          metadata: { name: device.metadata.name, namespace: device.metadata.namespace },
          status: { lastUsedAt },
        },
        fieldManager,
      );
    } catch (error) {
      if (isNotFound(error)) return awaitChange;
      throw error;
    }
    state.written.set(key, { at: ctx.now(), lastUsedAt: decision.lastUsedAt });
    return awaitChange;
  };
}

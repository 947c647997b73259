// The last-used controller: reads the passdb-sync reports (the devices' last logins at each Dovecot
// pod) and writes status.lastUsedAt of MailDevices by server-side apply of the status subresource,
// under its own field manager, so that it never contends with the MailDevice controller's status.
// At most one write per device per precision interval (decide.ts), whatever the login rate.
import { apiVersion, kinds, labels, passdbSyncReportComponent } from "../../api/names.ts";
import type { MailDevice } from "../../api/schemas.ts";
import type { KubeClient } from "../../kube/client.ts";
import { ApiError } from "../../kube/errors.ts";
import { named, resources } from "../../kube/resources.ts";
import type { Logger } from "../../log.ts";
import { latestLogins, readSyncReport } from "../../passdb/sync-report.ts";
import { Controller, awaitChange, requeueAfter, type ControllerMetrics } from "../../runtime/controller.ts";
import { Informer, objectKey } from "../../runtime/informer.ts";
import { decideLastUsed } from "./decide.ts";

/** Field manager, logger and metric label. */
export const lastUsedControllerName = "devicepass-last-used";

/** The documented precision of status.lastUsedAt. */
export const defaultLastUsedPrecisionMs = 5 * 60_000;

interface ReportConfigMap {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  data?: Record<string, string>;
}

interface ManagedFieldsEntry {
  manager?: unknown;
  subresource?: unknown;
  time?: unknown;
}

/** When `manager` last changed the status of `device` (its managedFields entry), if it ever did. */
export function lastStatusWriteBy(device: MailDevice, manager: string): Date | undefined {
  const entries = (device.metadata as { managedFields?: unknown }).managedFields;
  if (!Array.isArray(entries)) return undefined;
  const entry = (entries as ManagedFieldsEntry[]).find(
    (e) => e.manager === manager && e.subresource === "status" && typeof e.time === "string",
  );
  const time = entry ? new Date(entry.time as string) : undefined;
  return time && !Number.isNaN(time.getTime()) ? time : undefined;
}

export interface LastUsedControllerOptions {
  client: KubeClient;
  log: Logger;
  /** The MailDevices (the operator's cache). */
  devices: Informer<MailDevice>;
  /** The database namespace, where the reports are. */
  namespace: string;
  precisionMs: number;
  metrics?: ControllerMetrics;
  now?: () => Date;
}

export class LastUsedController {
  readonly reports: Informer<ReportConfigMap>;
  readonly controller: Controller;
  /** Latest reported login per device key. */
  private logins = new Map<string, Date>();
  /** Our writes not yet seen back in the cache: the budget holds before the watch catches up. */
  private readonly written = new Map<string, { at: Date; lastUsedAt: Date }>();
  private readonly options: LastUsedControllerOptions;
  private readonly now: () => Date;

  constructor(options: LastUsedControllerOptions) {
    this.options = options;
    this.now = options.now ?? (() => new Date());
    const log = options.log.child({ component: lastUsedControllerName });
    this.reports = new Informer<ReportConfigMap>({
      client: options.client,
      ref: resources.configMaps,
      namespaces: [options.namespace],
      log,
      // Not managed-by: the chart creates the report (Helm's label), or a sidecar does (devicepass).
      labelSelector: `${labels.component}=${passdbSyncReportComponent}`,
    });
    this.controller = new Controller({
      name: lastUsedControllerName,
      reconcile: (key) => this.reconcile(key),
      log: options.log,
      workers: 2,
      metrics: options.metrics,
    });
    this.reports.onChange(() => this.refresh());
    options.devices.onChange((device, _old, deleted) => {
      const key = objectKey(device);
      if (deleted) this.written.delete(key);
      else if (this.logins.has(key)) this.controller.enqueue(key);
    });
  }

  /** Re-reads every report and queues the devices whose latest login moved. */
  private refresh(): void {
    const now = this.now();
    const reports = this.reports.list().flatMap((cm) => {
      const { reports, problems } = readSyncReport(cm.data, now);
      for (const problem of problems)
        this.options.log.debug(
          { report: objectKey(cm), ...problem },
          "skipping part of a passdb-sync report",
        );
      return reports;
    });
    const logins = latestLogins(reports);
    for (const [device, at] of logins)
      if (this.logins.get(device)?.getTime() !== at.getTime()) this.controller.enqueue(device);
    this.logins = logins;
  }

  private async reconcile(key: string) {
    const device = this.options.devices.get(key);
    if (!device || device.metadata.deletionTimestamp) return awaitChange;
    const ours = this.written.get(key);
    const status = device.status?.lastUsedAt ? new Date(device.status.lastUsedAt) : undefined;
    // Whichever is newer: what the cache shows, or what we wrote and it has not shown yet.
    const current = ours && (!status || status < ours.lastUsedAt) ? ours.lastUsedAt : status;
    const recorded = lastStatusWriteBy(device, lastUsedControllerName);
    const lastWrite = ours && (!recorded || recorded < ours.at) ? ours.at : recorded;
    const decision = decideLastUsed({
      login: this.logins.get(key),
      current,
      lastWrite,
      created: new Date(device.metadata.creationTimestamp),
      now: this.now(),
      precisionMs: this.options.precisionMs,
    });
    if (decision.kind === "none") return awaitChange;
    if (decision.kind === "wait") return requeueAfter(decision.ms);
    const lastUsedAt = decision.lastUsedAt.toISOString().replace(/\.\d{3}Z$/, "Z");
    try {
      await this.options.client.apply(
        named(resources.mailDevices, device.metadata.namespace, device.metadata.name, "status"),
        {
          apiVersion,
          kind: kinds.mailDevice.kind,
          metadata: { name: device.metadata.name, namespace: device.metadata.namespace },
          status: { lastUsedAt },
        },
        lastUsedControllerName,
      );
    } catch (error) {
      if (error instanceof ApiError && error.kind === "NotFound") return awaitChange;
      throw error;
    }
    this.written.set(key, { at: this.now(), lastUsedAt: decision.lastUsedAt });
    return awaitChange;
  }

  /** Lists and watches the reports (the devices are the operator's cache, started elsewhere). */
  startCaches(signal: AbortSignal): Promise<void> {
    return this.reports.run(signal);
  }

  start(): void {
    this.controller.start();
    this.refresh();
  }

  stop(): Promise<void> {
    return this.controller.stop();
  }
}

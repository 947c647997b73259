// What the mail server has, as its passdb-sync sidecars report it: the reports read once per
// change of their ConfigMap (validated: they are input), shared by the controllers that use them
// (last-used times, and whether the mail server has a device's current password).
import type { ConfigMapObject } from "../kube/objects.ts";
import type { Logger } from "../log.ts";
import { objectKey } from "../runtime/informer.ts";
import {
  appliedEverywhere,
  latestLogins,
  liveReports,
  readSyncReport,
  type PodSyncReport,
} from "./sync-report.ts";

export class MailServerState {
  private reports: PodSyncReport[] = [];
  private readonly listeners: (() => void)[] = [];
  private readonly now: () => Date;

  constructor(now: () => Date) {
    this.now = now;
  }

  /** Re-reads every report ConfigMap; tells the listeners. */
  refresh(configMaps: readonly ConfigMapObject[], log: Logger): void {
    const now = this.now();
    this.reports = configMaps.flatMap((cm) => {
      const { reports, problems } = readSyncReport(cm.data, now);
      for (const problem of problems)
        log.debug({ report: objectKey(cm), ...problem }, "skipping part of a passdb-sync report");
      return reports;
    });
    for (const listener of this.listeners) listener();
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Does any sidecar report (recently)? Without one, nobody can say what the mail server has. */
  reporting(): boolean {
    return liveReports(this.reports, this.now()).length > 0;
  }

  /** Does every live sidecar have `shard` at `version` or later on disk? */
  applied(shard: string, version: string): boolean {
    return appliedEverywhere(this.reports, shard, version, this.now());
  }

  /** The latest login of each device, over every report. */
  logins(): Map<string, Date> {
    return latestLogins(this.reports);
  }
}

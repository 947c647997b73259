// The report of `devicepass passdb-sync`, the sidecar next to Dovecot: which shard versions each
// Dovecot pod has on disk, and when its devices last logged in there. One ConfigMap in the database
// namespace, one key per pod (a JSON document). The sidecar writes it; the operator reads it, and
// treats everything in it as input: a pod of the mail server, which faces the internet, wrote it.
import { z } from "zod";

/** The report's format version; a reader skips documents of another version. */
export const syncReportFormat = 1;

/** The ConfigMap's default name; `--report-name` of passdb-sync changes it. */
export const defaultSyncReportName = "devicepass-passdb-sync";

/** How often a sidecar rewrites its document although nothing changed, so readers see it is alive. */
export const syncReportHeartbeatMs = 30_000;

/** A document not rewritten for this long belongs to a pod that is gone or cut off: not counted. */
export const syncReportStaleAfterMs = 4 * syncReportHeartbeatMs;

/** A sidecar removes other pods' documents this old (pods of an earlier rollout). */
export const syncReportPruneAfterMs = 60 * 60_000;

/** Clocks of two machines may differ: a time up to this far in the future is taken as now. */
export const clockSkewMs = 60_000;

/**
 * What one sidecar writes under its pod's key. `shards` maps each shard Secret it has written to
 * disk to that Secret's resourceVersion; `lastLogins` maps `namespace/device` to the last
 * successful login there, in seconds since the epoch (compact: a ConfigMap holds 1 MiB).
 */
export interface SyncReportDocument {
  format: typeof syncReportFormat;
  /** When the sidecar last wrote this document (RFC 3339). */
  updatedAt: string;
  /** True once every shard Secret was listed and written since the sidecar started. */
  synced: boolean;
  shards: Record<string, string>;
  lastLogins: Record<string, number>;
}

/** A pod's report as the operator may use it: validated, times parsed. */
export interface PodSyncReport {
  pod: string;
  updatedAt: Date;
  synced: boolean;
  /** Shard Secret name → the resourceVersion on that pod's disk. */
  shards: ReadonlyMap<string, string>;
  /** `namespace/device` → last login there (never later than the time the report was read). */
  lastLogins: ReadonlyMap<string, Date>;
}

const podName = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const secretName = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** A MailDevice key: a namespace (a DNS label) and a device name (a DNS subdomain). */
export const deviceKeyPattern = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const resourceVersion = /^[0-9]{1,20}$/;
/** Far enough back for any real login, and a bound on what a number may claim. */
const earliestLoginSeconds = Date.UTC(2020, 0, 1) / 1000;

const documentSchema = z.strictObject({
  format: z.literal(syncReportFormat),
  updatedAt: z.iso.datetime({ offset: true }),
  synced: z.boolean(),
  shards: z.record(z.string(), z.string()),
  lastLogins: z.record(z.string(), z.number()),
});

export interface ReadProblem {
  pod: string;
  message: string;
}

/**
 * Reads every pod's document of a report ConfigMap's `data`. A document that is not valid JSON of
 * this format is skipped whole; inside a valid one, entries with a bad shard name, version, device
 * key or time are dropped one by one. Logins in the future (beyond the clock skew) are dropped,
 * nearer ones are taken as `now`. Never throws.
 */
export function readSyncReport(
  data: unknown,
  now: Date,
): { reports: PodSyncReport[]; problems: ReadProblem[] } {
  const reports: PodSyncReport[] = [];
  const problems: ReadProblem[] = [];
  if (data === null || typeof data !== "object" || Array.isArray(data)) return { reports, problems };
  const nowMs = now.getTime();
  for (const [pod, text] of Object.entries(data as Record<string, unknown>)) {
    if (!podName.test(pod)) {
      problems.push({ pod: pod.slice(0, 64), message: "The key is not a pod name." });
      continue;
    }
    if (typeof text !== "string") continue;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      problems.push({ pod, message: "The document is not JSON." });
      continue;
    }
    const parsed = documentSchema.safeParse(raw);
    if (!parsed.success) {
      problems.push({ pod, message: `The document is not a format ${syncReportFormat} report.` });
      continue;
    }
    const doc = parsed.data;
    const updatedAt = new Date(doc.updatedAt);
    if (updatedAt.getTime() > nowMs + clockSkewMs) {
      problems.push({ pod, message: "The document claims to be written in the future." });
      continue;
    }
    const shards = new Map<string, string>();
    for (const [name, version] of Object.entries(doc.shards))
      if (secretName.test(name) && resourceVersion.test(version)) shards.set(name, version);
    const lastLogins = new Map<string, Date>();
    let dropped = 0;
    for (const [device, seconds] of Object.entries(doc.lastLogins)) {
      const ms = seconds * 1000;
      if (
        !deviceKeyPattern.test(device) ||
        !Number.isInteger(seconds) ||
        seconds < earliestLoginSeconds ||
        ms > nowMs + clockSkewMs
      ) {
        dropped++;
        continue;
      }
      lastLogins.set(device, new Date(Math.min(ms, nowMs)));
    }
    if (dropped > 0)
      problems.push({ pod, message: `${dropped} login stamps were not valid and were skipped.` });
    reports.push({ pod, updatedAt, synced: doc.synced, shards, lastLogins });
  }
  return { reports, problems };
}

/** Reports rewritten within the stale bound: the pods that are alive and in touch. */
export function liveReports(reports: readonly PodSyncReport[], now: Date): PodSyncReport[] {
  return reports.filter((r) => now.getTime() - r.updatedAt.getTime() <= syncReportStaleAfterMs);
}

/**
 * Does every live pod have the shard at `version` or later on disk? False when no pod reports,
 * or one is still starting (`synced` false): nobody can say the mail server has the change.
 */
export function appliedEverywhere(
  reports: readonly PodSyncReport[],
  shard: string,
  version: string,
  now: Date,
): boolean {
  const live = liveReports(reports, now);
  if (live.length === 0 || !resourceVersion.test(version)) return false;
  return live.every((r) => {
    const applied = r.shards.get(shard);
    // resourceVersions are etcd revisions, increasing integers (see olderVersion in runtime/informer.ts).
    return r.synced && applied !== undefined && BigInt(applied) >= BigInt(version);
  });
}

/** The latest login of each device over all pods' reports (live or not: a login happened). */
export function latestLogins(reports: readonly PodSyncReport[]): Map<string, Date> {
  const latest = new Map<string, Date>();
  for (const report of reports)
    for (const [device, at] of report.lastLogins) {
      const seen = latest.get(device);
      if (!seen || seen < at) latest.set(device, at);
    }
  return latest;
}

/** The document a sidecar writes (it validates nothing: it is the source). */
export function renderSyncReport(doc: Omit<SyncReportDocument, "format">): string {
  const sorted = <T>(record: Record<string, T>) =>
    Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify({
    format: syncReportFormat,
    updatedAt: doc.updatedAt,
    synced: doc.synced,
    shards: sorted(doc.shards),
    lastLogins: sorted(doc.lastLogins),
  });
}

// Writes this pod's document of the passdb-sync report (see passdb/sync-report.ts): at most once
// per interval when something changed, and once per heartbeat when nothing did. Each pod merge-
// patches only its own key, so the pods of a Deployment share one ConfigMap without conflicts,
// and RBAC can restrict the sidecar to that one name.
import { labels, managedByValue, passdbSyncReportComponent } from "../api/names.ts";
import type { KubeClient } from "../kube/client.ts";
import { ApiError } from "../kube/errors.ts";
import { named, resources } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import {
  renderSyncReport,
  syncReportHeartbeatMs,
  syncReportPruneAfterMs,
  type SyncReportDocument,
} from "../passdb/sync-report.ts";
import { backoffDelay } from "../runtime/queue.ts";

export interface ReporterOptions {
  client: KubeClient;
  namespace: string;
  /** The ConfigMap's name. */
  name: string;
  /** This pod's key in it. */
  pod: string;
  log: Logger;
  /** Least time between two writes (changes in between are merged into one). */
  minIntervalMs: number;
  heartbeatMs?: number;
  /** The document's largest size; the oldest logins are left out beyond it. */
  maxBytes: number;
  now?: () => Date;
}

interface ConfigMapObject {
  metadata: { name: string; resourceVersion?: string };
  data?: Record<string, string>;
}

export class Reporter {
  private shards: Record<string, string> = {};
  private synced = false;
  private lastLogins: Record<string, number> = {};
  private written: string | undefined;
  private writtenAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private failures = 0;
  private stopped = false;
  private truncatedWarned = false;
  /** Documents written so far (for tests and the benchmark). */
  writes = 0;

  private readonly options: ReporterOptions;
  private readonly now: () => Date;

  constructor(options: ReporterOptions) {
    this.options = options;
    this.now = options.now ?? (() => new Date());
  }

  /** What is on disk now. */
  setApplied(shards: ReadonlyMap<string, string>, synced: boolean): void {
    this.shards = Object.fromEntries(shards);
    this.synced = synced;
    this.schedule();
  }

  /** The latest login of each device seen here (seconds since the epoch). */
  setLastLogins(lastLogins: ReadonlyMap<string, number>): void {
    this.lastLogins = Object.fromEntries(lastLogins);
    this.schedule();
  }

  start(): void {
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.writing;
  }

  /** The document body without its time, to tell whether anything changed. */
  private body(): string {
    return JSON.stringify([this.synced, this.shards, this.lastLogins]);
  }

  private schedule(): void {
    if (this.stopped || this.writing) return;
    clearTimeout(this.timer);
    const heartbeat = this.options.heartbeatMs ?? syncReportHeartbeatMs;
    const sinceWrite = Date.now() - this.writtenAt;
    const changed = this.body() !== this.written;
    const retry = this.failures > 0 ? backoffDelay(this.failures, { baseMs: 500, maxMs: 30_000 }) : 0;
    const wait = changed
      ? Math.max(this.options.minIntervalMs - sinceWrite, retry, 0)
      : Math.max(heartbeat - sinceWrite, retry, 0);
    this.timer = setTimeout(() => {
      this.writing = this.write().finally(() => {
        this.writing = undefined;
        this.schedule();
      });
    }, wait);
    this.timer.unref();
  }

  /** The document, without the oldest logins if it would outgrow its bound (warned once). */
  private document(updatedAt: string): string {
    const { text, logins, kept } = fitDocument(
      { updatedAt, synced: this.synced, shards: this.shards, lastLogins: this.lastLogins },
      this.options.maxBytes,
    );
    if (kept < logins && !this.truncatedWarned) {
      this.truncatedWarned = true;
      this.options.log.warn(
        { devices: logins, reported: kept, maxBytes: this.options.maxBytes },
        "more devices logged in than the report holds; the oldest logins are left out",
      );
    }
    return text;
  }

  private async write(): Promise<void> {
    const body = this.body();
    const document = this.document(this.now().toISOString());
    const { client, namespace, name, pod, log } = this.options;
    const ref = named(resources.configMaps, namespace, name);
    try {
      let current: ConfigMapObject;
      try {
        current = await client.mergePatch<ConfigMapObject>(
          ref,
          { data: { [pod]: document } },
          "devicepass-passdb-sync",
        );
      } catch (error) {
        if (!(error instanceof ApiError && error.kind === "NotFound")) throw error;
        current = await client
          .create<ConfigMapObject>(
            { ...resources.configMaps, namespace },
            {
              apiVersion: "v1",
              kind: "ConfigMap",
              metadata: {
                name,
                namespace,
                labels: { [labels.managedBy]: managedByValue, [labels.component]: passdbSyncReportComponent },
              },
              data: { [pod]: document },
            },
          )
          .catch((createError: unknown) => {
            // Another pod created it first: merge into theirs.
            if (createError instanceof ApiError && createError.kind === "AlreadyExists")
              return client.mergePatch<ConfigMapObject>(
                ref,
                { data: { [pod]: document } },
                "devicepass-passdb-sync",
              );
            throw createError;
          });
      }
      this.written = body;
      this.writtenAt = Date.now();
      this.failures = 0;
      this.writes++;
      await this.pruneGonePods(current);
    } catch (error) {
      this.failures++;
      log.warn(
        { err: (error as Error).message, report: `${namespace}/${name}` },
        "cannot write the report; retrying",
      );
    }
  }

  /** Drops documents of pods that stopped writing long ago (an earlier rollout's pods). */
  private async pruneGonePods(current: ConfigMapObject): Promise<void> {
    const now = this.now().getTime();
    const gone: Record<string, null> = {};
    for (const [pod, text] of Object.entries(current.data ?? {})) {
      if (pod === this.options.pod) continue;
      let updatedAt = Number.NaN;
      try {
        updatedAt = Date.parse((JSON.parse(text) as { updatedAt?: string }).updatedAt ?? "");
      } catch {
        // not a document of ours: as good as gone
      }
      if (!(now - updatedAt < syncReportPruneAfterMs)) gone[pod] = null;
    }
    if (Object.keys(gone).length === 0) return;
    const { client, namespace, name, log } = this.options;
    await client
      .mergePatch(named(resources.configMaps, namespace, name), { data: gone }, "devicepass-passdb-sync")
      .then(() => log.info({ pods: Object.keys(gone) }, "removed the reports of pods gone for an hour"))
      .catch((error: unknown) => log.warn({ err: (error as Error).message }, "cannot prune old reports"));
  }
}

/**
 * A report document of at most `maxBytes`: the newest logins that fit, so that the document never
 * outgrows its ConfigMap (1 MiB for all pods). Pure.
 */
export function fitDocument(
  doc: Omit<SyncReportDocument, "format">,
  maxBytes: number,
): { text: string; logins: number; kept: number } {
  const logins = Object.keys(doc.lastLogins).length;
  const whole = renderSyncReport(doc);
  if (Buffer.byteLength(whole) <= maxBytes) return { text: whole, logins, kept: logins };
  const newest = Object.entries(doc.lastLogins).sort(([, a], [, b]) => b - a);
  // Each entry is `"namespace/device":1795850000,`: its key's length plus 14 bytes.
  let budget = maxBytes - Buffer.byteLength(renderSyncReport({ ...doc, lastLogins: {} }));
  const kept: Record<string, number> = {};
  for (const [device, seconds] of newest) {
    budget -= device.length + 14;
    if (budget < 0) break;
    kept[device] = seconds;
  }
  return { text: renderSyncReport({ ...doc, lastLogins: kept }), logins, kept: Object.keys(kept).length };
}

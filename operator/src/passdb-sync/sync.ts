// passdb-sync's loop: watches the shard Secrets, keeps the password database folder equal to them
// (one atomic replace per changed file, removals once every shard has been listed), then tells
// Dovecot (auth cache flush, and a kick where a password stopped working) and reports what it has
// on disk and who logged in. One pass at a time; changes arriving meanwhile are merged into the next.
import { components, labels, managedByValue } from "../api/names.ts";
import type { KubeClient } from "../kube/client.ts";
import { resources } from "../kube/resources.ts";
import type { Logger } from "../log.ts";
import { addressKey, parseAddressFile, shardName, type PassdbEntry } from "../passdb/format.ts";
import { diffEntries } from "../passdb/view.ts";
import type { SecretObject } from "../kube/objects.ts";
import { Informer } from "../runtime/informer.ts";
import { backoffDelay } from "../runtime/queue.ts";
import type { SessionKicker } from "../sessions/kicker.ts";
import { desiredFiles } from "./desired.ts";
import type { AddressFiles } from "./files.ts";
import type { Reporter } from "./reporter.ts";
import { readStamps } from "./stamps.ts";

export interface PassdbSyncOptions {
  client: KubeClient;
  /** The database namespace. */
  namespace: string;
  secretPrefix: string;
  shards: number;
  files: AddressFiles;
  log: Logger;
  /** Local doveadm: flush and kick after a file changed; undefined leaves that to the operator. */
  sessions?: SessionKicker | undefined;
  reporter?: Reporter | undefined;
  /** Dovecot's last-login stamps, read every `stampScanMs`. */
  stamps?: { dir: string; scanMs: number; forgetAfterMs: number } | undefined;
  now?: () => Date;
}

/** The shard Secrets as RBAC can allow them by name: one list and watch per shard. */
export function shardInformers(options: {
  client: KubeClient;
  namespace: string;
  secretPrefix: string;
  shards: number;
  log: Logger;
}): Informer<SecretObject>[] {
  const { client, namespace, secretPrefix, shards, log } = options;
  return Array.from(
    { length: shards },
    (_, i) =>
      new Informer<SecretObject>({
        client,
        ref: resources.secrets,
        namespaces: [namespace],
        log,
        fieldSelector: `metadata.name=${shardName(secretPrefix, i)}`,
        labelSelector: `${labels.managedBy}=${managedByValue},${labels.component}=${components.passdb}`,
      }),
  );
}

export class PassdbSync {
  readonly informers: Informer<SecretObject>[];
  private readonly options: PassdbSyncOptions;
  private readonly abort = new AbortController();
  private runs: Promise<void>[] = [];
  private dirty = false;
  private pass: Promise<void> | undefined;
  private failures = 0;
  private lastProblems = "";
  private syncedFlag = false;
  private stampTimer: NodeJS.Timeout | undefined;
  private readonly lastLogins = new Map<string, number>();
  /** Passes that changed the folder, files written and removed so far. */
  readonly applied = { passes: 0, files: 0, removed: 0 };
  private readonly appliedListeners: ((versions: ReadonlyMap<string, string>) => void)[] = [];

  constructor(options: PassdbSyncOptions) {
    this.options = options;
    this.informers = shardInformers({ ...options, log: options.log.child({ component: "informer" }) });
    for (const informer of this.informers) informer.onChange(() => this.schedule());
  }

  /** True once every shard was listed and the folder written from all of them. */
  get synced(): boolean {
    return this.syncedFlag;
  }

  /** Called after each pass with the shard versions now on disk. */
  onApplied(listener: (versions: ReadonlyMap<string, string>) => void): void {
    this.appliedListeners.push(listener);
  }

  start(): void {
    const signal = this.abort.signal;
    this.runs = this.informers.map((informer) => informer.run(signal));
    // A shard that does not exist fires no change: its first (empty) list must still count.
    for (const informer of this.informers) void informer.synced.then(() => this.schedule());
    this.options.reporter?.start();
    this.options.sessions?.start();
    if (this.options.stamps) void this.scanStamps();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    clearTimeout(this.stampTimer);
    await Promise.all(this.runs);
    await this.pass;
    await this.options.sessions?.stop();
    await this.options.reporter?.stop();
  }

  private schedule(): void {
    this.dirty = true;
    if (this.pass) return;
    // A schedule() between the loop's last check of `dirty` and this callback found `pass` still
    // set: run again for it, or that change waits for the next one (the first sync, for ever).
    this.pass = this.loop().finally(() => {
      this.pass = undefined;
      if (this.dirty && !this.abort.signal.aborted) this.schedule();
    });
  }

  private async loop(): Promise<void> {
    while (this.dirty && !this.abort.signal.aborted) {
      this.dirty = false;
      try {
        await this.apply();
        this.failures = 0;
      } catch (error) {
        this.failures++;
        const retryInMs = backoffDelay(this.failures, { baseMs: 200, maxMs: 10_000 });
        this.options.log.error(
          { err: (error as Error).message, retryInMs },
          "cannot write the password database folder",
        );
        await new Promise((resolve) => setTimeout(resolve, retryInMs));
        this.dirty = true;
      }
    }
  }

  /** One pass: the folder made equal to the shards seen so far. */
  private async apply(): Promise<void> {
    const { files, log, sessions } = this.options;
    const shards = this.informers.flatMap((informer) =>
      informer.list().map((s) => ({
        name: s.metadata.name,
        resourceVersion: s.metadata.resourceVersion ?? "",
        data: s.data,
      })),
    );
    const allListed = this.informers.every((informer) => informer.hasSynced);
    const desired = desiredFiles(shards, this.options.secretPrefix, this.options.shards);
    const problems = desired.problems.join("\n");
    if (problems !== this.lastProblems) {
      this.lastProblems = problems;
      for (const problem of desired.problems) log.warn({ problem }, "skipping part of a shard Secret");
    }

    const changes: { name: string; before: string | undefined; after: PassdbEntry[] | undefined }[] = [];
    for (const [name, file] of desired.files) {
      const before = files.content(name);
      if (await files.write(name, file.content)) changes.push({ name, before, after: file.entries });
    }
    // Until every shard was listed, a missing file may only mean its shard is not listed yet.
    if (allListed)
      for (const name of files.names()) {
        if (desired.files.has(name)) continue;
        const before = files.content(name);
        if (await files.remove(name)) changes.push({ name, before, after: undefined });
      }
    if (changes.length > 0) {
      await files.syncDir();
      this.applied.passes++;
      this.applied.files += changes.filter((c) => c.after).length;
      this.applied.removed += changes.filter((c) => !c.after).length;
      log.debug({ files: changes.length }, "updated the password database folder");
    }
    if (allListed && !this.syncedFlag) {
      this.syncedFlag = true;
      log.info(
        { files: files.names().length, shards: desired.versions.size },
        "password database folder in sync",
      );
    }

    // Dovecot next: a cached login must not outlive the file it came from, nor a session its password.
    for (const change of changes) {
      const before = change.before === undefined ? [] : ownEntries(change.name, change.before);
      const after = change.after ?? [];
      const address = after[0]?.address ?? before[0]?.address;
      if (!sessions || address === undefined) continue;
      if (diffEntries(before, after).some((c) => c.kind !== "added")) sessions.kick(address);
      else sessions.flush(address);
    }
    this.options.reporter?.setApplied(desired.versions, this.syncedFlag);
    for (const listener of this.appliedListeners) listener(desired.versions);
  }

  /** Reads the last-login stamps, keeps the latest of each device, and hands them to the report. */
  private async scanStamps(): Promise<void> {
    const stamps = this.options.stamps!;
    try {
      const now = (this.options.now?.() ?? new Date()).getTime();
      const forgetBefore = Math.floor((now - stamps.forgetAfterMs) / 1000);
      const seen = await readStamps(stamps.dir, forgetBefore);
      for (const [device, seconds] of seen)
        if ((this.lastLogins.get(device) ?? 0) < seconds) this.lastLogins.set(device, seconds);
      for (const [device, seconds] of this.lastLogins)
        if (seconds < forgetBefore) this.lastLogins.delete(device);
      this.options.reporter?.setLastLogins(this.lastLogins);
    } catch (error) {
      this.options.log.warn({ err: (error as Error).message }, "cannot read the last-login stamps");
    }
    if (this.abort.signal.aborted) return;
    this.stampTimer = setTimeout(() => void this.scanStamps(), stamps.scanMs);
    this.stampTimer.unref();
  }
}

/** The entries of a file this folder held, if they are of the address its name is the key of. */
function ownEntries(name: string, content: string): PassdbEntry[] {
  return parseAddressFile(content).filter((e) => addressKey(e.address) === name && !/[*?\s]/.test(e.address));
}

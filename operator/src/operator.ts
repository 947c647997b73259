// The operator's manager: builds the shared caches and state, asks each controller module to set
// itself up (its triggers, its indexes, its workers), and starts caches, then controllers.
import {
  components,
  invitationNames,
  labels,
  managedByValue,
  passdbSyncReportComponent,
} from "./api/names.ts";
import {
  mailAddressSchema,
  mailDeviceSchema,
  mailDomainSchema,
  type MailAddress,
  type MailDevice,
  type MailDomain,
} from "./api/schemas.ts";
import type { OperatorConfig } from "./config.ts";
import { controllerNames, type Caches, type Metrics, type OperatorContext } from "./context.ts";
import { addIndexes, domainRules } from "./controllers/gather.ts";
import { cachedCredentialSecret, cachedMailObject } from "./controllers/cached-objects.ts";
import { isLastUsedEntry } from "./controllers/last-used/reconcile.ts";
import { setupAutoconfigController } from "./controllers/autoconfig/setup.ts";
import { setupInvitationRecordsController } from "./controllers/invitation-records/setup.ts";
import { setupLastUsedController } from "./controllers/last-used/setup.ts";
import { addInvitationIndexes } from "./controllers/invitation-gather.ts";
import { setupMailAddressController } from "./controllers/mail-address/setup.ts";
import { setupMailDeviceController } from "./controllers/mail-device/setup.ts";
import { setupMailDomainController } from "./controllers/mail-domain/setup.ts";
import { setupPassdbController } from "./controllers/passdb/setup.ts";
import type { SealKey } from "./credentials/seal.ts";
import type { ConfigMapObject as RecordConfigMap } from "./invitations/record.ts";
import type { KubeClient } from "./kube/client.ts";
import { EventRecorder } from "./kube/events.ts";
import { decodeData, type ConfigMapObject, type NamespaceObject, type SecretObject } from "./kube/objects.ts";
import { resources } from "./kube/resources.ts";
import type { Logger } from "./log.ts";
import { DatabaseState } from "./passdb/database-state.ts";
import { MailServerState } from "./passdb/mail-server-state.ts";
import { OwnershipRegistry } from "./passdb/ownership-registry.ts";
import { parseShard, shardIndexOf } from "./passdb/format.ts";
import { PassdbView } from "./passdb/view.ts";
import type { OwnershipRecord } from "./policy/ownership.ts";
import type { ControllerMetrics, ControllerSetup } from "./runtime/controller.ts";
import { Informer } from "./runtime/informer.ts";
import { StringInterner } from "./runtime/intern.ts";
import { SessionKicker, doveadmFromFile } from "./sessions/kicker.ts";

const noMetrics: Metrics & ControllerMetrics = {
  credential: () => {},
  passdbWrite: () => {},
  passdbLeftOut: () => {},
  passdbWriteFailed: () => {},
  kicked: () => {},
  reconciled: () => {},
  queueWaited: () => {},
  retried: () => {},
};

export interface OperatorOptions {
  client: KubeClient;
  config: OperatorConfig;
  log: Logger;
  seal: SealKey;
  metrics?: Metrics & ControllerMetrics;
  now?: () => Date;
}

/**
 * Validates what the API server returned against `schema`, then keeps what `keep` keeps of it.
 * The object kept is the one JSON.parse made, not zod's copy: the API server applies the CRD's
 * defaults (generated from the same schema) and prunes unknown fields, so an object that validates
 * already is the parsed type, and JSON.parse's objects are the more compact (~270 bytes a device).
 */
const parse =
  <T>(schema: { safeParse(raw: unknown): { success: boolean } }, keep: (object: T) => T = (o) => o) =>
  (raw: unknown) =>
    schema.safeParse(raw).success ? keep(raw as T) : undefined;

function buildCaches(client: KubeClient, config: OperatorConfig, log: Logger): Caches {
  const informerLog = log.child({ component: "informer" });
  // One instance of each short string, whichever cache holds it: 50,000 devices hold the same few
  // hundred values (api versions, label values, reasons, client settings) 50,000 times over.
  const interner = new StringInterner();
  const ours = (component: string) =>
    `${labels.managedBy}=${managedByValue},${labels.component}=${component}`;
  return {
    addresses: new Informer<MailAddress>({
      client,
      ref: resources.mailAddresses,
      namespaces: config.namespaces,
      log: informerLog,
      interner,
      parse: parse<MailAddress>(mailAddressSchema, cachedMailObject),
    }),
    devices: new Informer<MailDevice>({
      client,
      ref: resources.mailDevices,
      namespaces: config.namespaces,
      log: informerLog,
      interner,
      parse: parse<MailDevice>(mailDeviceSchema, cachedMailObject),
      // When the last-used controller last wrote a device's status: its write budget across restarts.
      keepManagedFields: isLastUsedEntry,
    }),
    secrets: new Informer<SecretObject>({
      client,
      ref: resources.secrets,
      namespaces: config.namespaces,
      log: informerLog,
      interner,
      labelSelector: ours(components.credentials),
      parse: (raw) => cachedCredentialSecret(raw as SecretObject),
    }),
    passdbShards: new Informer<SecretObject>({
      client,
      ref: resources.secrets,
      namespaces: [config.passdbNamespace],
      log: informerLog,
      labelSelector: ours(components.passdb),
    }),
    domains: new Informer<MailDomain>({
      client,
      ref: resources.mailDomains,
      log: informerLog,
      parse: parse<MailDomain>(mailDomainSchema),
    }),
    namespaces: new Informer<NamespaceObject>({ client, ref: resources.namespaces, log: informerLog }),
    syncReports: new Informer<ConfigMapObject>({
      client,
      ref: resources.configMaps,
      namespaces: [config.passdbNamespace],
      log: informerLog,
      // Not managed-by: the chart creates the report (Helm's label), or a sidecar does.
      labelSelector: `${labels.component}=${passdbSyncReportComponent}`,
    }),
    invitationLinks: new Informer<SecretObject>({
      client,
      ref: resources.secrets,
      namespaces: config.namespaces,
      log: informerLog,
      labelSelector: ours(components.invitationLink),
    }),
    invitationRecords: new Informer<RecordConfigMap>({
      client,
      ref: resources.configMaps,
      namespaces: [config.operatorNamespace],
      log: informerLog,
      labelSelector: ours(invitationNames.component),
    }),
  };
}

/** The ownership records of shard Secrets beyond the configured count (passdb.shards was lowered). */
function ownersBeyondShardCount(cache: Caches, config: OperatorConfig): OwnershipRecord[] {
  return cache.passdbShards.list().flatMap((shard) => {
    const index = shardIndexOf(config.passdbSecretPrefix, shard.metadata.name);
    return index !== undefined && index >= config.passdbShards ? parseShard(decodeData(shard)).owners : [];
  });
}

export class Operator {
  readonly cache: Caches;
  readonly passdb: PassdbView;
  readonly controllers: ControllerSetup[];
  readonly sessions: SessionKicker | undefined;
  readonly context: OperatorContext;
  private readonly abort = new AbortController();
  private informerRuns: Promise<void>[] = [];
  private controllersStarted = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor({ client, config, log, seal, metrics = noMetrics, now = () => new Date() }: OperatorOptions) {
    this.log = log;
    this.cache = buildCaches(client, config, log);
    this.passdb = new PassdbView({ prefix: config.passdbSecretPrefix, shards: config.passdbShards });
    this.sessions = config.doveadm
      ? new SessionKicker({
          cutter: doveadmFromFile(config.doveadm.url, config.doveadm.apiKeyFile),
          log,
          repeatAfterMs: config.doveadm.repeatAfterMs,
        })
      : undefined;
    const database = new DatabaseState((mailAddress) =>
      seal.bucket("passdb-shard", mailAddress, config.passdbShards),
    );
    const ctx: OperatorContext = (this.context = {
      config,
      client,
      log,
      events: new EventRecorder(client, "devicepass", log),
      cache: this.cache,
      rules: domainRules(this.cache, config.requireMailDomain),
      passdb: this.passdb,
      database,
      ownership: new OwnershipRegistry({
        graceMs: config.ownershipGraceMs,
        now,
        shardOf: (mailAddress) => database.shardOf(mailAddress),
      }),
      mailServer: new MailServerState(now),
      seal,
      metrics,
      sessions: this.sessions,
      now,
    });
    addIndexes(ctx);
    addInvitationIndexes(ctx);
    // The sidecars' reports are read once per change, for every controller that uses them.
    this.cache.syncReports.onChange(() => ctx.mailServer.refresh(this.cache.syncReports.list(), log));
    // The database as published is read from the shard Secrets, our own writes included.
    this.cache.passdbShards.onChange((shard, _old, deleted) =>
      this.passdb.update(shard.metadata.name, deleted ? undefined : shard),
    );
    if (this.sessions) {
      const sessions = this.sessions;
      sessions.onResult((_address, outcome) => metrics.kicked(outcome.ok));
      // A password the database no longer accepts: cut the sessions opened with it.
      this.passdb.onChange((changes) => {
        for (const { kind, entry } of changes) if (kind !== "added") sessions.kick(entry.address);
      });
    }
    this.controllers = [
      setupMailDeviceController(ctx),
      setupMailAddressController(ctx),
      setupPassdbController(ctx),
      setupMailDomainController(ctx),
      setupLastUsedController(ctx),
      setupInvitationRecordsController(ctx),
      setupAutoconfigController(ctx),
    ];
    for (const { controller } of this.controllers) metrics.watchQueue?.(controller.name, controller.queue);
  }

  /** Starts the caches, waits until they are synced, then starts the controllers. */
  async start(): Promise<void> {
    await this.startCaches();
    this.startControllers();
  }

  /** Fills the caches and keeps them current: a standby replica does this and nothing more. */
  async startCaches(): Promise<void> {
    const signal = this.abort.signal;
    const informers = Object.values(this.cache) as Informer<never>[];
    this.informerRuns = informers.map((informer) => informer.run(signal));
    await Promise.all(informers.map((informer) => informer.synced));
    this.log.info(
      {
        addresses: this.cache.addresses.size,
        devices: this.cache.devices.size,
        secrets: this.cache.secrets.size,
      },
      "caches synced",
    );
  }

  /** Starts reconciling (the leader does this), beginning with one pass over every object. */
  startControllers(): void {
    if (this.controllersStarted) return;
    this.controllersStarted = true;
    // Ownership is decided from the records the database holds, before anyone looks at a claim.
    // Those of shards beyond a lowered shard count too: their entries are never read again, but
    // their addresses' owners must not be lost with them (the first pass writes them anew).
    this.context.ownership.load(this.passdb.owners());
    this.context.ownership.load(ownersBeyondShardCount(this.cache, this.context.config));
    for (const { controller } of this.controllers) controller.start();
    this.sessions?.start();
    // Level-based: every object gets one pass at start and every resync period, whatever happened,
    // after any change waiting (low priority): at 50,000 devices a resync is minutes of work.
    const resync = () => {
      for (const { controller, keys } of this.controllers)
        for (const key of keys()) controller.enqueue(key, "low");
    };
    resync();
    this.resyncTimer = setInterval(resync, this.context.config.resyncPeriodMs);
    this.resyncTimer.unref();
  }

  /** The controller named `name` (see controllerNames). */
  controller(name: (typeof controllerNames)[keyof typeof controllerNames]) {
    return this.controllers.find((c) => c.controller.name === name)?.controller;
  }

  get synced(): boolean {
    return (Object.values(this.cache) as Informer<never>[]).every((informer) => informer.hasSynced);
  }

  /** Reconciles in flight per controller, for the shutdown log. */
  inFlight(): Record<string, number> {
    return Object.fromEntries(
      this.controllers.map(({ controller }) => [controller.name, controller.queue.inFlight]),
    );
  }

  /** Stops the controllers (reconciles in flight finish), then the caches. */
  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    await Promise.all([
      ...this.controllers.map(({ controller }) => controller.stop()),
      this.sessions?.stop(),
    ]);
    this.abort.abort();
    await Promise.all(this.informerRuns);
  }
}

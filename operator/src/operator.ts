// Assembles the operator: caches (informers), the three controllers, and the event wiring
// that maps a change of one object to the keys it concerns.
import { labels, managedByValue, passdbComponent } from "./api/names.ts";
import {
  mailAddressSchema,
  mailDeviceSchema,
  mailDomainSchema,
  type MailAddress,
  type MailDevice,
  type MailDomain,
} from "./api/schemas.ts";
import { reconcileMailDomain } from "./controllers/mail-domain/reconcile.ts";
import { LastUsedController, defaultLastUsedPrecisionMs } from "./controllers/last-used/controller.ts";
import { domainOf } from "./policy/domain.ts";
import {
  controllerNames,
  type Caches,
  type Metrics,
  type NamespaceObject,
  type OperatorConfig,
  type OperatorContext,
} from "./context.ts";
import { indexNames, addressKeyOf, claimsOf, domainRules } from "./controllers/gather.ts";
import { reconcileMailAddress } from "./controllers/mail-address/reconcile.ts";
import { reconcileMailDevice } from "./controllers/mail-device/reconcile.ts";
import { passdbKey, reconcilePassdb } from "./controllers/passdb/reconcile.ts";
import type { KubeClient } from "./kube/client.ts";
import { EventRecorder } from "./kube/events.ts";
import { resources } from "./kube/resources.ts";
import type { Logger } from "./log.ts";
import { PassdbView } from "./passdb/view.ts";
import { normalizeAddress } from "./policy/address-claims.ts";
import { credentialsComponent, type SecretObject } from "./policy/secret.ts";
import { Controller, type ControllerMetrics } from "./runtime/controller.ts";
import { Informer, objectKey } from "./runtime/informer.ts";
import { SessionKicker, doveadmFromFile } from "./sessions/kicker.ts";
import { reasons } from "./api/conditions.ts";
import { OperatorMetrics } from "./metrics.ts";

export const defaultConfig: OperatorConfig = {
  namespaces: undefined,
  passdbNamespace: "devicepass-system",
  passdbSecretPrefix: "devicepass-passdb",
  passdbShards: 64,
  passdbBatchWindowMs: 20,
  passwordLength: 24,
  argon2: { memoryCost: 19 * 1024, timeCost: 2, parallelism: 1 },
  defaultClientSettings: {},
  workers: 8,
  requireMailDomain: true,
  lastUsedPrecisionMs: defaultLastUsedPrecisionMs,
  doveadm: undefined,
};

const noMetrics: Metrics & ControllerMetrics = {
  credential: () => {},
  passdbWrite: () => {},
  kicked: () => {},
  reconciled: () => {},
  queueWaited: () => {},
  retried: () => {},
};

/** Only changes a reconcile acts on: spec, metadata, deletion. Status-only updates are our own echo. */
function meaningfulChange(
  object: MailDevice | MailAddress,
  old: MailDevice | MailAddress | undefined,
): boolean {
  if (!old) return true;
  const a = object.metadata;
  const b = old.metadata;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.annotations) !== JSON.stringify(b.annotations) ||
    JSON.stringify(a.labels) !== JSON.stringify(b.labels) ||
    JSON.stringify(a.finalizers) !== JSON.stringify(b.finalizers)
  );
}

export interface OperatorOptions {
  client: KubeClient;
  config: OperatorConfig;
  log: Logger;
  metrics?: Metrics & ControllerMetrics;
  now?: () => Date;
}

export class Operator {
  readonly cache: Caches;
  readonly passdb = new PassdbView();
  readonly controllers: { device: Controller; address: Controller; passdb: Controller; domain: Controller };
  readonly sessions: SessionKicker | undefined;
  /** status.lastUsedAt from the passdb-sync reports (its own informer, queue and field manager). */
  readonly lastUsed: LastUsedController;
  private readonly abort = new AbortController();
  private informerRuns: Promise<void>[] = [];
  private controllersStarted = false;
  private readonly log: Logger;

  constructor({ client, config, log, metrics = noMetrics, now = () => new Date() }: OperatorOptions) {
    this.log = log;
    const informerLog = log.child({ component: "informer" });
    const parse =
      <T>(schema: { safeParse(raw: unknown): { success: boolean; data?: T } }) =>
      (raw: unknown) =>
        schema.safeParse(raw).data;
    this.cache = {
      addresses: new Informer<MailAddress>({
        client,
        ref: resources.mailAddresses,
        namespaces: config.namespaces,
        log: informerLog,
        parse: parse<MailAddress>(mailAddressSchema),
      }),
      devices: new Informer<MailDevice>({
        client,
        ref: resources.mailDevices,
        namespaces: config.namespaces,
        log: informerLog,
        parse: parse<MailDevice>(mailDeviceSchema),
      }),
      secrets: new Informer<SecretObject>({
        client,
        ref: resources.secrets,
        namespaces: config.namespaces,
        log: informerLog,
        labelSelector: `${labels.managedBy}=${managedByValue},${labels.component}=${credentialsComponent}`,
      }),
      passdbShards: new Informer<SecretObject>({
        client,
        ref: resources.secrets,
        namespaces: [config.passdbNamespace],
        log: informerLog,
        labelSelector: `${labels.managedBy}=${managedByValue},${labels.component}=${passdbComponent}`,
      }),
      domains: new Informer<MailDomain>({
        client,
        ref: resources.mailDomains,
        log: informerLog,
        parse: parse<MailDomain>(mailDomainSchema),
      }),
      namespaces: new Informer<NamespaceObject>({ client, ref: resources.namespaces, log: informerLog }),
    };
    this.cache.addresses.addIndex(indexNames.domain, (a) => [domainOf(a.spec.address)]);
    this.cache.addresses.addIndex(indexNames.mailAddress, (a) => [normalizeAddress(a.spec.address)]);
    this.cache.devices.addIndex(indexNames.addressObject, (d) => [addressKeyOf(d)]);

    const events = new EventRecorder(client, "devicepass", log);
    this.sessions = config.doveadm
      ? new SessionKicker({
          cutter: doveadmFromFile(config.doveadm.url, config.doveadm.apiKeyFile),
          log,
          repeatAfterMs: config.doveadm.repeatAfterMs,
          onResult: (mailAddress, outcome) => {
            metrics.kicked(outcome.ok);
            for (const claimant of this.cache.addresses.byIndex(indexNames.mailAddress, mailAddress)) {
              if (!outcome.ok) events.record(claimant, "Warning", reasons.KickFailed, outcome.message);
              this.controllers.address.enqueue(objectKey(claimant));
            }
          },
        })
      : undefined;
    const ctx: OperatorContext = {
      config,
      client,
      log,
      events,
      sessions: this.sessions,
      cache: this.cache,
      rules: domainRules(this.cache, config.requireMailDomain),
      passdb: this.passdb,
      enqueue: {
        device: (key) => this.controllers.device.enqueue(key),
        address: (key) => this.controllers.address.enqueue(key),
        passdb: () => this.controllers.passdb.queue.addAfter(passdbKey, config.passdbBatchWindowMs),
      },
      metrics,
      now,
    };
    this.controllers = {
      device: new Controller({
        name: controllerNames.device,
        reconcile: reconcileMailDevice(ctx),
        log,
        workers: config.workers,
        metrics,
      }),
      address: new Controller({
        name: controllerNames.address,
        reconcile: reconcileMailAddress(ctx),
        log,
        workers: 2,
        metrics,
      }),
      passdb: new Controller({
        name: controllerNames.passdb,
        reconcile: reconcilePassdb(ctx),
        log,
        workers: 1,
        metrics,
      }),
      domain: new Controller({
        name: controllerNames.domain,
        reconcile: reconcileMailDomain(ctx),
        log,
        workers: 1,
        metrics,
      }),
    };
    this.lastUsed = new LastUsedController({
      client,
      log,
      devices: this.cache.devices,
      namespace: config.passdbNamespace,
      precisionMs: config.lastUsedPrecisionMs,
      metrics,
      now,
    });
    if (metrics instanceof OperatorMetrics) {
      for (const controller of Object.values(this.controllers))
        metrics.watchQueue(controller.name, controller.queue);
    }
    this.wire(ctx);
  }

  private wire(ctx: OperatorContext): void {
    const device = (key: string) => ctx.enqueue.device(key);
    const address = (key: string) => ctx.enqueue.address(key);
    const devicesOfAddressKey = (key: string) => this.cache.devices.byIndex(indexNames.addressObject, key);
    /** An address and everything that hangs on it: its devices, and the database. */
    const revisitAddress = (a: MailAddress) => {
      address(objectKey(a));
      for (const d of devicesOfAddressKey(objectKey(a))) device(objectKey(d));
      ctx.enqueue.passdb();
    };

    this.cache.devices.onChange((d, old, deleted) => {
      if (deleted || meaningfulChange(d, old)) {
        device(objectKey(d));
        ctx.enqueue.passdb();
      }
      address(addressKeyOf(d)); // device counts and readiness
    });
    this.cache.addresses.onChange((a, old, deleted) => {
      if (!deleted && !meaningfulChange(a, old) && JSON.stringify(a.spec) === JSON.stringify(old?.spec))
        return;
      // A change of one claim can change who wins the mail address: revisit every claimant.
      for (const claimant of [a, ...claimsOf(this.cache, a)]) revisitAddress(claimant);
      this.controllers.domain.enqueue(domainOf(a.spec.address));
    });
    // A domain's rules, or a namespace's labels, decide which addresses may issue credentials.
    this.cache.domains.onChange((domain) => {
      for (const a of this.cache.addresses.byIndex(indexNames.domain, domain.metadata.name))
        revisitAddress(a);
      this.controllers.domain.enqueue(domain.metadata.name);
    });
    this.cache.namespaces.onChange((namespace, old, deleted) => {
      if (!deleted && JSON.stringify(namespace.metadata.labels) === JSON.stringify(old?.metadata.labels))
        return;
      for (const a of this.cache.addresses.list()) {
        if (a.metadata.namespace !== namespace.metadata.name) continue;
        revisitAddress(a);
        this.controllers.domain.enqueue(domainOf(a.spec.address));
      }
    });
    this.cache.secrets.onChange((secret) => {
      const owner = secret.metadata.ownerReferences?.find((ref) => ref.controller);
      if (owner) device(`${secret.metadata.namespace}/${owner.name}`);
      ctx.enqueue.passdb();
    });
    this.cache.passdbShards.onChange((shard, _old, deleted) => {
      this.passdb.update(objectKey(shard), deleted ? undefined : shard);
      ctx.enqueue.passdb(); // a hand edit or deletion is rewritten
    });
    this.passdb.onChange((changes) => {
      for (const { kind, entry } of changes) {
        device(entry.device);
        const d = this.cache.devices.get(entry.device);
        if (d) address(addressKeyOf(d));
        // A password the database no longer accepts: cut the sessions opened with it.
        if (kind !== "added") this.sessions?.kick(entry.address);
      }
    });
  }

  /** Starts the caches, waits until they are synced, then starts the controllers. */
  async start(): Promise<void> {
    await this.startCaches();
    this.startControllers();
  }

  /** Fills the caches and keeps them current: a standby replica does this and nothing more. */
  async startCaches(): Promise<void> {
    const signal = this.abort.signal;
    this.informerRuns = Object.values(this.cache).map((informer: Informer<never>) => informer.run(signal));
    // Not waited for: logins reported by the mail server never hold up the operator's readiness.
    this.informerRuns.push(this.lastUsed.startCaches(signal));
    await Promise.all(Object.values(this.cache).map((informer: Informer<never>) => informer.synced));
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
    for (const controller of Object.values(this.controllers)) controller.start();
    this.sessions?.start();
    this.lastUsed.start();
    // Level-based start: every object gets one pass, whatever happened while we were away.
    for (const d of this.cache.devices.list()) this.controllers.device.enqueue(objectKey(d));
    for (const a of this.cache.addresses.list()) this.controllers.address.enqueue(objectKey(a));
    for (const d of this.cache.domains.list()) this.controllers.domain.enqueue(d.metadata.name);
    this.controllers.passdb.enqueue(passdbKey);
  }

  get synced(): boolean {
    return Object.values(this.cache).every((informer: Informer<never>) => informer.hasSynced);
  }

  /** Stops the controllers (reconciles in flight finish), then the caches. */
  async stop(): Promise<void> {
    await Promise.all([
      ...Object.values(this.controllers).map((c) => c.stop()),
      this.sessions?.stop(),
      this.lastUsed.stop(),
    ]);
    this.abort.abort();
    await Promise.all(this.informerRuns);
  }
}

// What every controller shares: configuration, the API client, the caches, the operator's own
// state (the database as published, the ownership records, the seal) and the clock.
import type { MailAddress, MailDevice, MailDomain } from "./api/schemas.ts";
import type { OperatorConfig } from "./config.ts";
import type { SealKey } from "./credentials/seal.ts";
import type { KubeClient } from "./kube/client.ts";
import type { EventRecorder } from "./kube/events.ts";
import type { ConfigMapObject as RecordConfigMap } from "./invitations/record.ts";
import type { ConfigMapObject, NamespaceObject, SecretObject } from "./kube/objects.ts";
import type { Logger } from "./log.ts";
import type { DatabaseState } from "./passdb/database-state.ts";
import type { MailServerState } from "./passdb/mail-server-state.ts";
import type { OwnershipRegistry } from "./passdb/ownership-registry.ts";
import type { PassdbView } from "./passdb/view.ts";
import type { DomainRules } from "./policy/ownership.ts";
import type { ControllerMetrics } from "./runtime/controller.ts";
import type { Informer } from "./runtime/informer.ts";
import type { SessionKicker } from "./sessions/kicker.ts";

export interface Caches {
  addresses: Informer<MailAddress>;
  devices: Informer<MailDevice>;
  /** Device credential Secrets (label app.kubernetes.io/component=credentials). */
  secrets: Informer<SecretObject>;
  /** The password database's shard Secrets. */
  passdbShards: Informer<SecretObject>;
  /** MailDomains, cluster-scoped, by name. */
  domains: Informer<MailDomain>;
  /** Namespaces, for MailDomain namespace selectors. */
  namespaces: Informer<NamespaceObject>;
  /** The passdb-sync reports in the database namespace: what each Dovecot pod has and who logged in. */
  syncReports: Informer<ConfigMapObject>;
  /** Devices' invitation link Secrets (label app.kubernetes.io/component=invitation-link). */
  invitationLinks: Informer<SecretObject>;
  /** Invitation records in the operator's namespace (ConfigMaps, component=invitation). */
  invitationRecords: Informer<RecordConfigMap>;
}

export interface Metrics {
  credential(event: "issued" | "rotated" | "revoked"): void;
  passdbWrite(shards: number, entries: number, bytes: number): void;
  passdbLeftOut(shard: number, addresses: number): void;
  passdbWriteFailed(shard: number): void;
  kicked(ok: boolean): void;
}

export interface OperatorContext {
  config: OperatorConfig;
  client: KubeClient;
  log: Logger;
  events: EventRecorder;
  cache: Caches;
  /** The tenant boundary: MailDomains and the namespaces they admit. */
  rules: DomainRules;
  passdb: PassdbView;
  database: DatabaseState;
  ownership: OwnershipRegistry;
  /** What the mail server's passdb-sync sidecars report having. */
  mailServer: MailServerState;
  seal: SealKey;
  metrics: Metrics & ControllerMetrics;
  /** Cuts sessions when a password stops working; undefined when no mail server is configured. */
  sessions: SessionKicker | undefined;
  now: () => Date;
}

/** Field manager, and logger and metric label, of each controller. */
export const controllerNames = {
  device: "devicepass-maildevice",
  address: "devicepass-mailaddress",
  passdb: "devicepass-passdb",
  domain: "devicepass-maildomain",
  sessions: "devicepass-sessions",
  lastUsed: "devicepass-last-used",
  invitationRecords: "devicepass-invitation-records",
  autoconfig: "devicepass-autoconfig",
} as const;

// What every controller shares: configuration, the API client, the caches, and the clock.
import type { ClientSettings, MailAddress, MailDevice, MailDomain } from "./api/schemas.ts";
import type { DomainRules } from "./policy/address-claims.ts";
import type { Argon2Parameters } from "./credentials/password.ts";
import type { KubeClient } from "./kube/client.ts";
import type { EventRecorder } from "./kube/events.ts";
import type { Logger } from "./log.ts";
import type { PassdbView } from "./passdb/view.ts";
import type { SecretObject } from "./policy/secret.ts";
import type { Informer } from "./runtime/informer.ts";
import type { SessionKicker } from "./sessions/kicker.ts";

export interface OperatorConfig {
  /** Namespaces to watch; undefined watches all. */
  namespaces: string[] | undefined;
  passdbNamespace: string;
  passdbSecretPrefix: string;
  passdbShards: number;
  /** How long the password database waits for more changes before it writes. */
  passdbBatchWindowMs: number;
  passwordLength: number;
  argon2: Argon2Parameters;
  defaultClientSettings: ClientSettings;
  workers: number;
  /** Addresses whose domain has no MailDomain get no credentials (off: single-tenant clusters). */
  requireMailDomain: boolean;
  /** status.lastUsedAt is written at most once per device per this interval (its precision). */
  lastUsedPrecisionMs: number;
  /** Dovecot's doveadm HTTP API, to cut sessions; undefined disables it. */
  doveadm: { url: string; apiKeyFile: string; repeatAfterMs: number } | undefined;
}

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
}

export interface NamespaceObject {
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string> };
}

export interface Enqueue {
  device(key: string): void;
  address(key: string): void;
  passdb(): void;
}

export interface Metrics {
  credential(event: "issued" | "rotated" | "revoked"): void;
  passdbWrite(shards: number, entries: number, bytes: number): void;
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
  enqueue: Enqueue;
  metrics: Metrics;
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
} as const;

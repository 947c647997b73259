// What every controller shares: configuration, the API client, the caches, and the clock.
import type { ClientSettings, MailAddress, MailDevice } from "./api/schemas.ts";
import type { Argon2Parameters } from "./credentials/password.ts";
import type { KubeClient } from "./kube/client.ts";
import type { EventRecorder } from "./kube/events.ts";
import type { Logger } from "./log.ts";
import type { PassdbView } from "./passdb/view.ts";
import type { SecretObject } from "./policy/secret.ts";
import type { Informer } from "./runtime/informer.ts";

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
}

export interface Caches {
  addresses: Informer<MailAddress>;
  devices: Informer<MailDevice>;
  /** Device credential Secrets (label app.kubernetes.io/component=credentials). */
  secrets: Informer<SecretObject>;
  /** The password database's shard Secrets. */
  passdbShards: Informer<SecretObject>;
}

export interface Enqueue {
  device(key: string): void;
  address(key: string): void;
  passdb(): void;
}

export interface Metrics {
  credential(event: "issued" | "rotated" | "revoked"): void;
  passdbWrite(shards: number, entries: number, bytes: number): void;
}

export interface OperatorContext {
  config: OperatorConfig;
  client: KubeClient;
  log: Logger;
  events: EventRecorder;
  cache: Caches;
  passdb: PassdbView;
  enqueue: Enqueue;
  metrics: Metrics;
  now: () => Date;
}

/** Field manager, and logger and metric label, of each controller. */
export const controllerNames = {
  device: "devicepass-maildevice",
  address: "devicepass-mailaddress",
  passdb: "devicepass-passdb",
} as const;

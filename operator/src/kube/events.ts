// Records core/v1 Events on objects, as `kubectl describe` shows them. Best effort: a failed
// event is logged, never retried, and never holds up a reconcile.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "../log.ts";
import type { KubeClient } from "./client.ts";
import { resources } from "./resources.ts";

export interface InvolvedObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string | undefined; uid?: string; resourceVersion?: string };
}

export type EventType = "Normal" | "Warning";

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly component: string;
  private readonly log: Logger;
  private readonly instance = hostname();

  constructor(client: KubeClient, component: string, log: Logger) {
    this.client = client;
    this.component = component;
    this.log = log;
  }

  record(object: InvolvedObject, type: EventType, reason: string, message: string): void {
    const now = new Date().toISOString();
    const namespace = object.metadata.namespace ?? "default";
    const event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${object.metadata.name}.${randomBytes(8).toString("hex")}`, namespace },
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name: object.metadata.name,
        namespace,
        uid: object.metadata.uid,
        resourceVersion: object.metadata.resourceVersion,
      },
      type,
      reason,
      message,
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    this.client.create({ ...resources.events, namespace }, event).catch((error: unknown) => {
      this.log.warn(
        { err: (error as Error).message, reason, object: object.metadata.name },
        "could not record an event",
      );
    });
  }
}

// cert-manager's updateOrApplyStatus: the one ending of every reconcile that reports. Skips the
// write when the status is unchanged, records a Warning event when Ready turns False for a new
// reason, applies the status subresource under the controller's field manager, and puts the
// result into the cache at once, so the next pass compares against what was written.
import { isDeepStrictEqual } from "node:util";
import { Ready } from "../api/conditions.ts";
import type { Condition } from "../api/schemas.ts";
import type { KubeClient, ResourceRef } from "../kube/client.ts";
import type { EventRecorder, InvolvedObject } from "../kube/events.ts";
import { named } from "../kube/resources.ts";
import type { Informer } from "./informer.ts";

export interface StatusObject extends InvolvedObject {
  apiVersion: string;
  kind: string;
  metadata: InvolvedObject["metadata"] & { resourceVersion: string };
  status?: { conditions?: Condition[] | undefined } | undefined;
}

export interface StatusWriter<T extends StatusObject> {
  client: KubeClient;
  resource: ResourceRef;
  fieldManager: string;
  events: EventRecorder;
  cache: Informer<T>;
  /**
   * The status fields this writer owns. Others (another controller's, under another field
   * manager) are neither compared nor written: server-side apply leaves them alone.
   */
  fields: readonly string[];
  /**
   * The condition types this writer owns, where others write conditions of their own into the same
   * list (a list-map keyed by type: server-side apply merges the entries of several managers).
   * Undefined: every condition is this writer's.
   */
  conditionTypes?: readonly string[];
  /** Ready reasons that are steps on the way, not news: no Warning for them. */
  quietReasons?: ReadonlySet<string>;
}

/** JSON without undefined members, as the API server stores it. */
export function normalized<V>(value: V): V {
  return JSON.parse(JSON.stringify(value ?? {})) as V;
}

/** Writes `status` unless it is what the object already says; returns whether it wrote. */
export async function applyStatus<T extends StatusObject>(
  writer: StatusWriter<T>,
  object: T,
  status: NonNullable<T["status"]>,
): Promise<boolean> {
  const own = (value: object) => {
    const fields = Object.fromEntries(Object.entries(value).filter(([k]) => writer.fields.includes(k)));
    const types = writer.conditionTypes;
    if (types && Array.isArray(fields.conditions))
      fields.conditions = (fields.conditions as Condition[]).filter((c) => types.includes(c.type));
    return fields as typeof status;
  };
  const next = own(normalized(status));
  const previous = own(normalized(object.status ?? {}));
  if (isDeepStrictEqual(next, previous)) return false;
  const ready = next.conditions?.find((c) => c.type === Ready);
  const before = previous.conditions?.find((c) => c.type === Ready);
  if (ready?.status === "False" && ready.reason !== before?.reason && !writer.quietReasons?.has(ready.reason))
    writer.events.record(object, "Warning", ready.reason, ready.message);
  const written = await writer.client.apply<unknown>(
    named(writer.resource, object.metadata.namespace, object.metadata.name, "status"),
    {
      apiVersion: object.apiVersion,
      kind: object.kind,
      metadata: { name: object.metadata.name, namespace: object.metadata.namespace },
      status: next,
    },
    writer.fieldManager,
  );
  // Status-only echoes start no reconcile: the next one must see this status, not the one before.
  writer.cache.assumeWritten(object.metadata.resourceVersion, written);
  return true;
}

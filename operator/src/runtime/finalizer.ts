// kube-rs's finalizer(): one place for the four states of (our finalizer present) × (object
// being deleted). Adds the finalizer (with any metadata the controller wants in the same patch)
// before anything is created for the object, runs cleanup once it is being deleted, and removes
// the finalizer when cleanup is done. Every patch carries the resourceVersion read as a
// precondition, so another party's finalizer is never dropped; a 404 counts as done.
import type { KubeClient, ResourceRef } from "../kube/client.ts";
import { isNotFound } from "../kube/errors.ts";
import { named } from "../kube/resources.ts";
import { awaitChange, type Action } from "./controller.ts";

export interface Finalizable {
  metadata: {
    name: string;
    namespace?: string | undefined;
    resourceVersion: string;
    deletionTimestamp?: string | undefined;
    finalizers?: string[] | undefined;
    labels?: Record<string, string> | undefined;
  };
}

export interface FinalizerOptions {
  client: KubeClient;
  resource: ResourceRef;
  finalizer: string;
  fieldManager: string;
  /** Labels the object should carry, added in the same patch as the finalizer. */
  labels?: Record<string, string>;
}

export interface FinalizerHandlers<T> {
  /** The object is live and carries the finalizer (and labels). */
  apply(object: T): Promise<Action>;
  /** The object is being deleted: clean up; "done" releases it. */
  cleanup(object: T): Promise<Action | "done">;
}

export async function finalizer<T extends Finalizable>(
  options: FinalizerOptions,
  object: T,
  handlers: FinalizerHandlers<T>,
): Promise<Action> {
  const { client, resource, finalizer: name, fieldManager } = options;
  const ref = named(resource, object.metadata.namespace, object.metadata.name);
  const present = object.metadata.finalizers?.includes(name) ?? false;
  if (object.metadata.deletionTimestamp) {
    if (!present) return awaitChange;
    const result = await handlers.cleanup(object);
    if (result !== "done") return result;
    try {
      await client.mergePatch(
        ref,
        {
          metadata: {
            resourceVersion: object.metadata.resourceVersion,
            finalizers: (object.metadata.finalizers ?? []).filter((f) => f !== name),
          },
        },
        fieldManager,
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    return awaitChange;
  }
  const wantLabels = options.labels ?? {};
  const labelsPresent = Object.entries(wantLabels).every(([k, v]) => object.metadata.labels?.[k] === v);
  if (present && labelsPresent) return handlers.apply(object);
  const patched = await client.mergePatch<T>(
    ref,
    {
      metadata: {
        resourceVersion: object.metadata.resourceVersion,
        finalizers: present ? undefined : [...(object.metadata.finalizers ?? []), name],
        labels: labelsPresent ? undefined : wantLabels,
      },
    },
    fieldManager,
  );
  // Go on with the patched object: the watch event of our own patch is then no news.
  return handlers.apply({ ...object, metadata: { ...object.metadata, ...patched.metadata } });
}

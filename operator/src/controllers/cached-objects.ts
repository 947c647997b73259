// What the caches keep of each object: what the controllers read, and nothing else. A tenant can
// write anything into its own objects (kubectl's last-applied-configuration annotation doubles
// every object applied with kubectl, and any data a tenant adds to a credential Secret is
// hostile input): none of it may grow the operator's memory or reach a decision.
import { group, labels as ownLabels } from "../api/names.ts";
import type { ObjectMeta } from "../api/schemas.ts";
import type { SecretObject } from "../kube/objects.ts";
import { ownedDataKeys } from "../policy/secret.ts";

const ownAnnotationPrefix = `${group}/`;
const ownLabelKeys = new Set<string>(Object.values(ownLabels));

function filtered(
  record: Record<string, string> | undefined,
  keep: (key: string) => boolean,
): Record<string, string> | undefined {
  if (!record) return undefined;
  const kept = Object.entries(record).filter(([key]) => keep(key));
  return kept.length === Object.keys(record).length ? record : Object.fromEntries(kept);
}

/** Devicepass's own annotations (mail.devicepass.io/…): the only ones it reads. */
export function ownAnnotations(annotations: Record<string, string> | undefined) {
  return filtered(annotations, (key) => key.startsWith(ownAnnotationPrefix));
}

/** A MailAddress or MailDevice as cached: other tools' annotations dropped. */
export function cachedMailObject<T extends { metadata: ObjectMeta }>(object: T): T {
  const annotations = ownAnnotations(object.metadata.annotations);
  if (annotations === object.metadata.annotations) return object;
  return { ...object, metadata: { ...object.metadata, annotations } };
}

/** A credential Secret as cached: devicepass's labels, annotations and data keys, its owner. */
export function cachedCredentialSecret(secret: SecretObject): SecretObject {
  const { name, namespace, uid, resourceVersion, deletionTimestamp, ownerReferences } = secret.metadata;
  return {
    type: secret.type,
    metadata: {
      name,
      namespace,
      uid,
      resourceVersion,
      deletionTimestamp,
      labels: filtered(secret.metadata.labels, (key) => ownLabelKeys.has(key)),
      annotations: ownAnnotations(secret.metadata.annotations),
      ownerReferences,
    },
    data: filtered(secret.data, (key) => ownedDataKeys.has(key)),
  };
}

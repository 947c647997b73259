// Echo filters for triggers: which changes of a watched object a controller acts on. A status
// write of our own comes back as an update; only what a reconcile reads starts one.

interface Meta {
  metadata: {
    generation?: number | undefined;
    deletionTimestamp?: string | undefined;
    annotations?: Record<string, string> | undefined;
    labels?: Record<string, string> | undefined;
    finalizers?: string[] | undefined;
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** Spec (generation), deletion, annotations, labels or finalizers changed: not a status-only echo. */
export function specOrMetadataChanged<T extends Meta>(object: T, old: T | undefined): boolean {
  if (!old) return true;
  const a = object.metadata;
  const b = old.metadata;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    !same(a.annotations, b.annotations) ||
    !same(a.labels, b.labels) ||
    !same(a.finalizers, b.finalizers)
  );
}

/** Spec or deletion changed (labels and annotations do not matter to the reader). */
export function specChanged<T extends Meta>(object: T, old: T | undefined): boolean {
  return (
    !old ||
    object.metadata.generation !== old.metadata.generation ||
    object.metadata.deletionTimestamp !== old.metadata.deletionTimestamp
  );
}

export function labelsChanged<T extends Meta>(object: T, old: T | undefined): boolean {
  return !old || !same(object.metadata.labels, old.metadata.labels);
}

// metav1.Condition bookkeeping: lastTransitionTime moves only when the status flips.
import type { Condition } from "../api/schemas.ts";

export interface DesiredCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

export function setCondition(
  existing: readonly Condition[] | undefined,
  desired: DesiredCondition,
  observedGeneration: number | undefined,
  now: Date,
): Condition[] {
  const previous = existing?.find((c) => c.type === desired.type);
  const lastTransitionTime =
    previous && previous.status === desired.status
      ? previous.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, "Z");
  const condition: Condition = { ...desired, lastTransitionTime };
  if (observedGeneration !== undefined) condition.observedGeneration = observedGeneration;
  return [...(existing ?? []).filter((c) => c.type !== desired.type), condition];
}

// Durations as Kubernetes and Go spell them ("90s", "5m", "720h", "1h30m"): the one parser for
// flags and for API fields such as spec.invitation.validFor.

/** The pattern of a duration field, for OpenAPI and CEL. */
export const durationPattern = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$";

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Go-style duration; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (!new RegExp(durationPattern).test(text)) return undefined;
  let ms = 0;
  for (const [, value, , unit] of text.matchAll(/([0-9]+(\.[0-9]+)?)(ms|s|m|h)/g))
    ms += Number(value) * unitMs[unit!]!;
  return Math.round(ms);
}

/** The shortest Go-style spelling of whole seconds, minutes or hours. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

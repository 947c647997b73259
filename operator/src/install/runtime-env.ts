// How the operator's process runs in its container, as environment variables: the one list the
// chart, the plain manifest and the bench (which measures the operator as it ships) use, and the
// Dockerfile repeats for `docker run` (a unit test keeps the two equal).

/** The chart's default memory limit for the operator's container (values.ts: resources). */
export const defaultMemoryLimitMiB = 1024;

/** Share of the container's memory limit given to V8's old generation. */
const heapPercentOfLimit = 50;

/**
 * V8's young generation, per semi-space: capped at 4 MiB (V8 grows it to 16). The operator's
 * garbage is short-lived (the JSON of watch events and list pages): a larger nursery only held on
 * to more memory between collections (at 5,000 devices, peak RSS 352 MiB with V8's default, 204
 * with 4; 1 MiB promoted more to the old generation and did worse).
 */
const semiSpaceMiB = 4;

function nodeOptions(oldSpace: string): string {
  return `${oldSpace} --max-semi-space-size=${semiSpaceMiB}`;
}

export const operatorRuntimeEnv = {
  /**
   * V8 sizes its heap for the node's memory, not the container's: half of the memory limit (the
   * cgroup's) for the old generation. A smaller limit also makes V8 grow the heap by a smaller
   * factor after each collection (1.3-2 instead of up to 4).
   */
  NODE_OPTIONS: nodeOptions(`--max-old-space-size-percentage=${heapPercentOfLimit}`),
  /**
   * glibc raises its malloc trim and mmap thresholds every time it frees a large block (a list
   * page's Buffer), up to 32 MiB, after which freed memory stays in the process: at 5,000 devices
   * that was 300 MiB of RSS against a V8 heap of 60. Setting the threshold turns that adjustment
   * off, so freed memory goes back to the system.
   */
  MALLOC_TRIM_THRESHOLD_: String(128 * 1024),
} as const;

/**
 * The same settings as they resolve in a container limited to `memoryLimitMiB`, for a process
 * outside one (the bench): the percentage would otherwise apply to the whole machine's memory.
 */
export function operatorEnvWithin(memoryLimitMiB: number): Record<string, string> {
  const oldSpaceMiB = Math.floor((memoryLimitMiB * heapPercentOfLimit) / 100);
  return { ...operatorRuntimeEnv, NODE_OPTIONS: nodeOptions(`--max-old-space-size=${oldSpaceMiB}`) };
}

/** The same as a container's env list. */
export function operatorEnvList(): { name: string; value: string }[] {
  return Object.entries(operatorRuntimeEnv).map(([name, value]) => ({ name, value }));
}

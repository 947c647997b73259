// When a device's status.lastUsedAt is written: pure, from the latest login the mail server
// reported, the value in status, and when this controller last wrote it. The precision bounds the
// writes: one per device per precision interval at most, whatever the login rate.

export interface LastUsedInput {
  /** The latest successful login reported for the device. */
  login: Date | undefined;
  /** status.lastUsedAt now. */
  current: Date | undefined;
  /** When this controller last wrote status.lastUsedAt (its managedFields entry), if ever. */
  lastWrite: Date | undefined;
  /** The device's creationTimestamp: a login before it was an earlier device of that name. */
  created: Date;
  now: Date;
  precisionMs: number;
}

export type LastUsedDecision =
  | { kind: "none" }
  | { kind: "write"; lastUsedAt: Date }
  /** A newer login, but the last write was less than one precision interval ago. */
  | { kind: "wait"; ms: number };

export function decideLastUsed(input: LastUsedInput): LastUsedDecision {
  const { login, current, lastWrite, created, now, precisionMs } = input;
  // Seconds are the status's resolution (RFC 3339 without fractions).
  const at = login && new Date(Math.floor(Math.min(login.getTime(), now.getTime()) / 1000) * 1000);
  if (!at || at.getTime() < Math.floor(created.getTime() / 1000) * 1000) return { kind: "none" };
  if (current && at.getTime() - current.getTime() < precisionMs) return { kind: "none" };
  if (lastWrite) {
    const sinceWrite = now.getTime() - lastWrite.getTime();
    if (sinceWrite < precisionMs) return { kind: "wait", ms: precisionMs - sinceWrite };
  }
  return { kind: "write", lastUsedAt: at };
}

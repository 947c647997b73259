// The API server's audit log as the bench's request counter: a policy that records who did what,
// and a reader that turns the log into requests by user, verb, resource and time window.
import { open } from "node:fs/promises";

/** Users whose requests the bench counts: the operator and the limit client. */
export const benchUsers = {
  operator: "devicepass-operator",
  limit: "devicepass-bench-limit",
} as const;

/**
 * Metadata level (no bodies) for the counted users, nothing for anyone else: the bench's own
 * setup and kube-controller-manager cost the API server no audit work. RequestReceived is left
 * out, so that a request is one ResponseComplete line (watches also get a ResponseStarted line).
 */
export const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    users: [${Object.values(benchUsers)
      .map((u) => JSON.stringify(u))
      .join(", ")}]
  - level: None
`;

export const writeVerbs: ReadonlySet<string> = new Set([
  "create",
  "update",
  "patch",
  "delete",
  "deletecollection",
]);

export interface AuditRecord {
  id: string;
  user: string;
  verb: string;
  /** `resource` or `resource/subresource`; the request path for non-resource requests. */
  resource: string;
  namespace: string | undefined;
  /** Request path and query, for telling list scopes apart. */
  uri: string;
  code: number;
  /** When the API server received the request (ms since the epoch). */
  at: number;
  /** When the first recorded stage happened: for a watch, when its stream started. */
  stageAt: number;
}

interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

/** Reads the audit log as it grows; each request appears once, at its first recorded stage. */
export class AuditLog {
  readonly records: AuditRecord[] = [];
  private readonly path: string;
  private offset = 0;
  private partial = "";
  private readonly seen = new Set<string>();

  constructor(path: string) {
    this.path = path;
  }

  /** Reads what was appended since the last call. */
  async refresh(): Promise<void> {
    const file = await open(this.path, "r").catch(() => undefined);
    if (!file) return;
    try {
      const { size } = await file.stat();
      if (size <= this.offset) return;
      const buffer = Buffer.alloc(size - this.offset);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, this.offset);
      this.offset += bytesRead;
      const lines = (this.partial + buffer.toString("utf8", 0, bytesRead)).split("\n");
      this.partial = lines.pop() ?? "";
      for (const line of lines) if (line) this.add(JSON.parse(line) as AuditEvent);
    } finally {
      await file.close();
    }
  }

  private add(event: AuditEvent): void {
    if (this.seen.has(event.auditID)) return;
    this.seen.add(event.auditID);
    const ref = event.objectRef;
    const resource = ref?.resource
      ? ref.subresource
        ? `${ref.resource}/${ref.subresource}`
        : ref.resource
      : event.requestURI.split("?")[0]!;
    this.records.push({
      id: event.auditID,
      user: event.user?.username ?? "",
      verb: event.verb,
      resource,
      namespace: ref?.namespace,
      uri: event.requestURI,
      code: event.responseStatus?.code ?? 0,
      at: Date.parse(event.requestReceivedTimestamp),
      stageAt: Date.parse(event.stageTimestamp),
    });
  }

  /** Requests of `user` received in [from, to). */
  of(user: string, from: number, to = Infinity): AuditRecord[] {
    return this.records.filter((r) => r.user === user && r.at >= from && r.at < to);
  }
}

/** `verb resource` → count, the passdb namespace's Secrets told apart from the rest. */
export function countByVerbAndResource(
  records: readonly AuditRecord[],
  passdbNamespace?: string,
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) {
    const key = `${r.verb} ${kindOf(r, passdbNamespace)}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The resource, with `secrets` in the password database's namespace called `secrets(passdb)`. */
export function kindOf(record: AuditRecord, passdbNamespace?: string): string {
  return record.resource === "secrets" &&
    passdbNamespace !== undefined &&
    record.namespace === passdbNamespace
    ? "secrets(passdb)"
    : record.resource;
}

export const writesOf = (records: readonly AuditRecord[]): AuditRecord[] =>
  records.filter((r) => writeVerbs.has(r.verb));

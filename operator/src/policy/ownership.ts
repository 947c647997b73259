// Who may issue credentials for a mail address: its MailDomain must admit the claim's namespace,
// and among the MailAddress objects claiming one mail address, the owner's wins. Ownership is a
// record the operator keeps (in the password database): a reservation of the MailDomain decides
// it; otherwise the first claim admitted takes it, and keeps it through a re-creation of its
// MailAddress, a late admission of another namespace, or an older creation timestamp elsewhere.
import type { MailAddress, MailDomain } from "../api/schemas.ts";
import { mailAddressRegExp } from "../api/schemas.ts";
import { domainOf } from "./domain.ts";

export function normalizeAddress(address: string): string {
  return address.trim().toLowerCase();
}

export function addressObjectKey(address: MailAddress): string {
  return `${address.metadata.namespace}/${address.metadata.name}`;
}

/** The operator's record of which namespace owns a mail address. */
export interface OwnershipRecord {
  /** The mail address, lower-case. */
  address: string;
  namespace: string;
  /** When the namespace took the address. */
  since: string;
  /** When the namespace last stopped holding an admitted claim; the record lapses a grace period later. */
  releasedAt?: string | undefined;
}

/** The oldest of several claims: by creation time, then namespace/name (one-second timestamps tie). */
export function oldestClaim(claims: readonly MailAddress[]): MailAddress | undefined {
  let winner: MailAddress | undefined;
  for (const claim of claims) {
    if (!winner) {
      winner = claim;
      continue;
    }
    const a = Date.parse(claim.metadata.creationTimestamp);
    const b = Date.parse(winner.metadata.creationTimestamp);
    if (a < b || (a === b && addressObjectKey(claim) < addressObjectKey(winner))) winner = claim;
  }
  return winner;
}

/** `*` any run of characters, `?` one character; everything else literal. */
export function globMatches(glob: string, value: string): boolean {
  const pattern = glob.replace(/[.*+?^${}()|[\]\\-]/g, (c) =>
    c === "*" ? ".*" : c === "?" ? "." : `\\${c}`,
  );
  return new RegExp(`^${pattern}$`).test(value);
}

/** The namespace a MailDomain reserves the address's local part for, if any (the first match). */
export function reservedNamespace(domain: MailDomain | undefined, mailAddress: string): string | undefined {
  const local = normalizeAddress(mailAddress).slice(0, mailAddress.lastIndexOf("@"));
  return domain?.spec.reservations?.find((r) => r.localParts.some((glob) => globMatches(glob, local)))
    ?.namespace;
}

export interface OwnershipInput {
  address: string;
  record: OwnershipRecord | undefined;
  /** Namespaces holding a live claim their MailDomain admits. */
  admittedNamespaces: ReadonlySet<string>;
  /** The namespace of the oldest such claim. */
  oldestAdmitted: string | undefined;
  reserved: string | undefined;
  now: Date;
  /** How long a released record still holds the address for its namespace. */
  graceMs: number;
}

const iso = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

/** The ownership record after this moment; undefined when nobody owns the address. */
export function nextOwnership(input: OwnershipInput): OwnershipRecord | undefined {
  const { address, record, admittedNamespaces, now, graceMs } = input;
  const holding = (namespace: string, since: string): OwnershipRecord | undefined => {
    const previous = record?.namespace === namespace ? record.releasedAt : undefined;
    if (admittedNamespaces.has(namespace)) return { address, namespace, since };
    const releasedAt = previous ?? iso(now);
    if (now.getTime() - Date.parse(releasedAt) >= graceMs) return undefined;
    return { address, namespace, since, releasedAt };
  };
  if (input.reserved !== undefined) {
    const since = record?.namespace === input.reserved ? record.since : iso(now);
    return holding(input.reserved, since);
  }
  if (record) {
    const kept = holding(record.namespace, record.since);
    if (kept) return kept;
  }
  return input.oldestAdmitted === undefined
    ? undefined
    : { address, namespace: input.oldestAdmitted, since: iso(now) };
}

/** When a released record lapses (ms since the epoch), if it is released. */
export function ownershipLapsesAt(record: OwnershipRecord, graceMs: number): number | undefined {
  return record.releasedAt === undefined ? undefined : Date.parse(record.releasedAt) + graceMs;
}

/** How the tenant boundary is checked: the MailDomain of a domain, and whether it admits a namespace. */
export interface DomainRules {
  /** Without a MailDomain for its domain, an address issues nothing (the default). */
  required: boolean;
  domain(name: string): MailDomain | undefined;
  admits(domain: MailDomain, namespace: string): boolean;
}

/** No MailDomain is required, and none exists: the single-tenant setting. */
export const noDomainRules: DomainRules = { required: false, domain: () => undefined, admits: () => true };

export type DomainVerdict =
  | { ok: true; domain: MailDomain | undefined }
  | { ok: false; state: "DomainNotFound"; domainName: string }
  | { ok: false; state: "NamespaceNotAllowed"; domain: MailDomain };

/** May `address`'s namespace hold addresses of its domain? A MailDomain that exists always applies. */
export function domainVerdict(address: MailAddress, rules: DomainRules): DomainVerdict {
  const domainName = domainOf(address.spec.address);
  const domain = rules.domain(domainName);
  if (!domain)
    return rules.required
      ? { ok: false, state: "DomainNotFound", domainName }
      : { ok: true, domain: undefined };
  if (domain.metadata.deletionTimestamp && rules.required)
    return { ok: false, state: "DomainNotFound", domainName };
  if (!rules.admits(domain, address.metadata.namespace!))
    return { ok: false, state: "NamespaceNotAllowed", domain };
  return { ok: true, domain };
}

/** A live claim (not being deleted) that its MailDomain admits. */
export function isAdmittedClaim(claim: MailAddress, rules: DomainRules): boolean {
  return !claim.metadata.deletionTimestamp && domainVerdict(claim, rules).ok;
}

/** What every claim of one mail address needs to know about the others, for ownership. */
export function claimSummary(
  claims: readonly MailAddress[],
  rules: DomainRules,
): { admittedNamespaces: Set<string>; oldestAdmitted: string | undefined } {
  const admitted = claims.filter((c) => isAdmittedClaim(c, rules));
  return {
    admittedNamespaces: new Set(admitted.map((c) => c.metadata.namespace!)),
    oldestAdmitted: oldestClaim(admitted)?.metadata.namespace,
  };
}

export type AddressStanding =
  | { state: "NotFound" }
  | { state: "Deleting"; address: MailAddress }
  | { state: "DomainNotFound"; address: MailAddress; domainName: string }
  | { state: "NamespaceNotAllowed"; address: MailAddress; domain: MailDomain }
  /** Owned by another namespace (never named: it is another tenant), or reserved for one. */
  | { state: "Conflict"; address: MailAddress; reserved: boolean }
  /** An older MailAddress of the same namespace claims the same mail address. */
  | { state: "Duplicate"; address: MailAddress; winner: MailAddress }
  | { state: "Unsupported"; address: MailAddress }
  | { state: "Issuing"; address: MailAddress; mailAddress: string; domain: MailDomain | undefined };

/**
 * Whether `address` may issue credentials, given every claim of its mail address and the
 * ownership record as it stands now (after nextOwnership).
 */
export function addressStanding(
  address: MailAddress | undefined,
  claims: readonly MailAddress[],
  owner: OwnershipRecord | undefined,
  fitsPassdb: (mailAddress: string) => boolean,
  rules: DomainRules = noDomainRules,
): AddressStanding {
  if (!address) return { state: "NotFound" };
  if (address.metadata.deletionTimestamp) return { state: "Deleting", address };
  const mailAddress = normalizeAddress(address.spec.address);
  if (!mailAddressRegExp.test(mailAddress) || !fitsPassdb(mailAddress))
    return { state: "Unsupported", address };
  const verdict = domainVerdict(address, rules);
  if (!verdict.ok) {
    return verdict.state === "DomainNotFound"
      ? { state: "DomainNotFound", address, domainName: verdict.domainName }
      : { state: "NamespaceNotAllowed", address, domain: verdict.domain };
  }
  const namespace = address.metadata.namespace!;
  if (owner?.namespace !== namespace || owner.releasedAt !== undefined)
    return {
      state: "Conflict",
      address,
      reserved: reservedNamespace(verdict.domain, mailAddress) !== undefined,
    };
  const winner = oldestClaim(
    claims.filter((c) => c.metadata.namespace === namespace && isAdmittedClaim(c, rules)),
  );
  if (winner && addressObjectKey(winner) !== addressObjectKey(address))
    return { state: "Duplicate", address, winner };
  return { state: "Issuing", address, mailAddress, domain: verdict.domain };
}

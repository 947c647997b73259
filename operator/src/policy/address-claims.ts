// Whether an address may issue credentials: its domain must admit its namespace, and among the
// MailAddress objects claiming the same mail address, the oldest admitted one wins.
import type { MailAddress, MailDomain } from "../api/schemas.ts";
import { domainOf } from "./domain.ts";

export function normalizeAddress(address: string): string {
  return address.trim().toLowerCase();
}

export function addressObjectKey(address: MailAddress): string {
  return `${address.metadata.namespace}/${address.metadata.name}`;
}

/**
 * The claim that wins among MailAddress objects of one mail address: the oldest by creation time;
 * within the same second (the API server's resolution), the first by namespace/name.
 */
export function claimWinner(claims: readonly MailAddress[]): MailAddress | undefined {
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

export type AddressStanding =
  | { state: "NotFound" }
  | { state: "Deleting"; address: MailAddress }
  | { state: "DomainNotFound"; address: MailAddress; domainName: string }
  | { state: "NamespaceNotAllowed"; address: MailAddress; domain: MailDomain }
  | { state: "Conflict"; address: MailAddress; winner: MailAddress }
  | { state: "Unsupported"; address: MailAddress }
  | { state: "Issuing"; address: MailAddress; mailAddress: string; domain: MailDomain | undefined };

/**
 * Whether `address` may issue credentials, given every claim of its mail address. Claims from
 * namespaces the domain does not admit do not count: an older claim there must not block the
 * rightful owner.
 */
export function addressStanding(
  address: MailAddress | undefined,
  claims: readonly MailAddress[],
  fitsPassdb: (mailAddress: string) => boolean,
  rules: DomainRules = noDomainRules,
): AddressStanding {
  if (!address) return { state: "NotFound" };
  if (address.metadata.deletionTimestamp) return { state: "Deleting", address };
  const verdict = domainVerdict(address, rules);
  if (!verdict.ok) {
    return verdict.state === "DomainNotFound"
      ? { state: "DomainNotFound", address, domainName: verdict.domainName }
      : { state: "NamespaceNotAllowed", address, domain: verdict.domain };
  }
  const winner = claimWinner(claims.filter((claim) => domainVerdict(claim, rules).ok));
  if (winner && addressObjectKey(winner) !== addressObjectKey(address))
    return { state: "Conflict", address, winner };
  const mailAddress = normalizeAddress(address.spec.address);
  if (!fitsPassdb(mailAddress)) return { state: "Unsupported", address };
  return { state: "Issuing", address, mailAddress, domain: verdict.domain };
}

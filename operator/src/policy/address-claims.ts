// Who owns a mail address when several MailAddress objects in the cluster claim it: the oldest.
import type { MailAddress } from "../api/schemas.ts";

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

export type AddressStanding =
  | { state: "NotFound" }
  | { state: "Deleting"; address: MailAddress }
  | { state: "Conflict"; address: MailAddress; winner: MailAddress }
  | { state: "Unsupported"; address: MailAddress }
  | { state: "Issuing"; address: MailAddress; mailAddress: string };

/** Whether `address` may issue credentials, given every claim of its mail address. */
export function addressStanding(
  address: MailAddress | undefined,
  claims: readonly MailAddress[],
  fitsPassdb: (mailAddress: string) => boolean,
): AddressStanding {
  if (!address) return { state: "NotFound" };
  if (address.metadata.deletionTimestamp) return { state: "Deleting", address };
  const winner = claimWinner(claims);
  if (winner && addressObjectKey(winner) !== addressObjectKey(address))
    return { state: "Conflict", address, winner };
  const mailAddress = normalizeAddress(address.spec.address);
  if (!fitsPassdb(mailAddress)) return { state: "Unsupported", address };
  return { state: "Issuing", address, mailAddress };
}

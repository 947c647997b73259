// Pure decisions about one MailAddress: its Ready condition and device counts.
import { Ready, reasons, type Reason } from "../api/conditions.ts";
import type { MailDevice } from "../api/schemas.ts";
import type { AddressStanding } from "./ownership.ts";

export interface AddressReadiness {
  status: "True" | "False";
  reason: Reason;
  message: string;
}

export function isReady(device: MailDevice): boolean {
  return device.status?.conditions?.some((c) => c.type === Ready && c.status === "True") ?? false;
}

/** Ready of an address. Messages name only this namespace's objects, never another tenant's. */
export function addressReadiness(
  standing: AddressStanding,
  devices: readonly MailDevice[],
): AddressReadiness {
  switch (standing.state) {
    case "NotFound":
    case "Deleting":
      return {
        status: "False",
        reason: reasons.Deleting,
        message: "The address is being deleted; its devices' credentials are revoked.",
      };
    case "DomainNotFound":
      return {
        status: "False",
        reason: reasons.DomainNotFound,
        message: `No MailDomain ${standing.domainName} exists; ask a cluster administrator to create one that admits namespace ${standing.address.metadata.namespace}. No credentials are issued.`,
      };
    case "NamespaceNotAllowed":
      return {
        status: "False",
        reason: reasons.NamespaceNotAllowed,
        message: `MailDomain ${standing.domain.metadata.name} does not admit namespace ${standing.address.metadata.namespace} (neither spec.namespaces nor spec.namespaceSelector); no credentials are issued.`,
      };
    case "Conflict":
      return {
        status: "False",
        reason: reasons.AddressConflict,
        message: standing.reserved
          ? `${standing.address.spec.address} is reserved for another namespace by its MailDomain; no credentials are issued.`
          : `${standing.address.spec.address} is owned by another namespace, which claimed it first; no credentials are issued. A cluster administrator can give it to this namespace with a reservation in its MailDomain.`,
      };
    case "Duplicate":
      return {
        status: "False",
        reason: reasons.AddressConflict,
        message: `${standing.address.spec.address} is already claimed by the older MailAddress ${standing.winner.metadata.name} in this namespace; no credentials are issued.`,
      };
    case "Unsupported":
      return {
        status: "False",
        reason: reasons.AddressUnsupported,
        message: `${standing.address.spec.address} cannot be served by the mail server: its local part must hold only letters, digits, '.', '-' and '_', and the address must fit the password database.`,
      };
    case "Issuing": {
      const ready = devices.filter(isReady).length;
      return {
        status: "True",
        reason: reasons.AddressReady,
        message: `${standing.mailAddress} issues credentials; ${ready} of ${devices.length} devices are ready.`,
      };
    }
  }
}

// Pure decisions about one MailDevice: does it need a new password, may it keep its credential,
// what Ready says. No I/O; the controller gathers the input and acts on the decision.
import { rotateAnnotation } from "../api/names.ts";
import { reasons, type Reason } from "../api/conditions.ts";
import type { MailDevice } from "../api/schemas.ts";
import { deviceProtocolsUnder } from "./domain.ts";
import type { PassdbEntry } from "../passdb/format.ts";
import type { AddressStanding } from "./address-claims.ts";
import { isOwnedBy, readPasswordRecord, type SecretObject } from "./secret.ts";

export type SecretState =
  { kind: "absent" } | { kind: "foreign"; secret: SecretObject } | { kind: "owned"; secret: SecretObject };

export function secretState(secret: SecretObject | undefined, device: MailDevice): SecretState {
  if (!secret) return { kind: "absent" };
  return isOwnedBy(secret, device) ? { kind: "owned", secret } : { kind: "foreign", secret };
}

export interface DeviceInput {
  device: MailDevice;
  standing: AddressStanding;
  secret: SecretState;
  /** The hash the password database holds for this device now, if any. */
  publishedHash: string | undefined;
  /** SHA-256 of a password, to check the Secret's digest annotation. */
  digest: (password: string) => string;
}

export type CredentialAction =
  /** Generate a new password and write it to the Secret. */
  | { type: "issue"; reason: Reason; message: string }
  /** Rewrite the Secret's other fields (settings, labels), keeping the password. */
  | { type: "refresh" }
  /** Delete the owned Secret once the database no longer accepts its password. */
  | { type: "revoke" }
  | { type: "none" };

export interface DeviceDecision {
  action: CredentialAction;
  ready: { status: "True" | "False"; reason: Reason; message: string };
}

export function deviceKey(device: MailDevice): string {
  return `${device.metadata.namespace}/${device.metadata.name}`;
}

/** Why the current password must be replaced, if it must. */
function replacementReason(
  input: DeviceInput,
  secret: SecretObject,
): { reason: Reason; message: string } | undefined {
  const { device, standing } = input;
  const record = readPasswordRecord(secret);
  if (!record.password || !record.hash || !record.digest || input.digest(record.password) !== record.digest) {
    return {
      reason: reasons.PasswordReplaced,
      message: `The password in Secret ${secret.metadata.name} was changed outside devicepass; a new one was generated.`,
    };
  }
  const deviceRotate = device.metadata.annotations?.[rotateAnnotation];
  if (deviceRotate !== undefined && deviceRotate !== record.rotatedFor) {
    return {
      reason: reasons.Rotated,
      message: `The password was rotated for ${rotateAnnotation}=${deviceRotate}.`,
    };
  }
  const addressRotate =
    standing.state === "Issuing" ? standing.address.metadata.annotations?.[rotateAnnotation] : undefined;
  if (addressRotate !== undefined && addressRotate !== record.addressRotatedFor) {
    return {
      reason: reasons.Rotated,
      message: `The password was rotated for ${rotateAnnotation}=${addressRotate} on MailAddress ${device.spec.address}.`,
    };
  }
  return undefined;
}

export function decideDevice(input: DeviceInput): DeviceDecision {
  const { device, standing, secret, publishedHash } = input;
  const revokeWith = (reason: Reason, message: string): DeviceDecision => ({
    action: secret.kind === "owned" || publishedHash !== undefined ? { type: "revoke" } : { type: "none" },
    ready: { status: "False", reason, message },
  });

  if (device.metadata.deletionTimestamp) return revokeWith(reasons.Deleting, "The device is being deleted.");
  switch (standing.state) {
    case "NotFound":
      return revokeWith(
        reasons.AddressNotFound,
        `MailAddress ${device.spec.address} does not exist in namespace ${device.metadata.namespace}.`,
      );
    case "Deleting":
      return revokeWith(reasons.AddressDeleting, `MailAddress ${device.spec.address} is being deleted.`);
    case "Conflict":
      return revokeWith(
        reasons.AddressConflict,
        `${standing.address.spec.address} is claimed by the older MailAddress ${standing.winner.metadata.namespace}/${standing.winner.metadata.name}.`,
      );
    case "Unsupported":
      return revokeWith(
        reasons.AddressUnsupported,
        `${standing.address.spec.address} is too long for the password database.`,
      );
    case "DomainNotFound":
      return revokeWith(
        reasons.DomainNotFound,
        `No MailDomain ${standing.domainName} admits this device's address.`,
      );
    case "NamespaceNotAllowed":
      return revokeWith(
        reasons.NamespaceNotAllowed,
        `MailDomain ${standing.domain.metadata.name} does not admit namespace ${device.metadata.namespace}.`,
      );
    case "Issuing":
      break;
  }
  const { forbidden } = deviceProtocolsUnder(device, standing.domain);
  if (forbidden.length > 0) {
    return revokeWith(
      reasons.ProtocolNotAllowed,
      `MailDomain ${standing.domain?.metadata.name} does not allow ${forbidden.join(", ")} for its devices.`,
    );
  }

  if (secret.kind === "foreign") {
    return {
      action: { type: "none" },
      ready: {
        status: "False",
        reason: reasons.SecretConflict,
        message: `Secret ${secret.secret.metadata.name} exists and is not managed by this MailDevice; it is left untouched.`,
      },
    };
  }
  if (secret.kind === "absent") {
    const reissue = device.status?.passwordGeneratedAt !== undefined;
    return {
      action: reissue
        ? {
            type: "issue",
            reason: reasons.Reissued,
            message: "The credential Secret was deleted; a new password was generated.",
          }
        : { type: "issue", reason: reasons.Issued, message: "A password was generated for the device." },
      ready: { status: "False", reason: reasons.Publishing, message: "A new password is being issued." },
    };
  }
  const replace = replacementReason(input, secret.secret);
  if (replace) {
    return {
      action: { type: "issue", ...replace },
      ready: { status: "False", reason: reasons.Publishing, message: "A new password is being issued." },
    };
  }
  const hash = readPasswordRecord(secret.secret).hash;
  const published = publishedHash === hash;
  return {
    action: { type: "refresh" },
    ready: published
      ? {
          status: "True",
          reason: reasons.CredentialsReady,
          message: `The mail server accepts the password in Secret ${secret.secret.metadata.name}.`,
        }
      : {
          status: "False",
          reason: reasons.Publishing,
          message: `The password in Secret ${secret.secret.metadata.name} is waiting for the password database.`,
        },
  };
}

/**
 * The database entry a device may have: only a live device of an issuing address whose own Secret
 * holds a password matching its digest. Anything else must not be accepted by the mail server.
 */
export function publishableEntry(
  device: MailDevice,
  standing: AddressStanding,
  secret: SecretObject | undefined,
  digest: (password: string) => string,
): PassdbEntry | undefined {
  if (device.metadata.deletionTimestamp || standing.state !== "Issuing") return undefined;
  if (!secret || !isOwnedBy(secret, device) || secret.metadata.deletionTimestamp) return undefined;
  const { protocols, forbidden } = deviceProtocolsUnder(device, standing.domain);
  if (forbidden.length > 0) return undefined;
  const record = readPasswordRecord(secret);
  if (!record.password || !record.hash || !record.digest || digest(record.password) !== record.digest)
    return undefined;
  return {
    address: standing.mailAddress,
    device: deviceKey(device),
    protocols,
    hash: record.hash,
  };
}

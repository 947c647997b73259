// Pure decisions about one MailDevice: does it need a new password, may it keep its credential,
// what Ready says. No I/O; the controller gathers the input and acts on the decision.
import { rotateAnnotation } from "../api/names.ts";
import { reasons, suspendingReasons, type Reason } from "../api/conditions.ts";
import type { MailDevice } from "../api/schemas.ts";
import type { SecretObject } from "../kube/objects.ts";
import type { PassdbEntry } from "../passdb/format.ts";
import { deviceProtocolsUnder } from "./domain.ts";
import type { AddressStanding } from "./ownership.ts";
import { isOwnedBy, type CredentialCheck, type PasswordRecord } from "./secret.ts";

export type SecretState =
  { kind: "absent" } | { kind: "foreign"; secret: SecretObject } | { kind: "owned"; secret: SecretObject };

export function secretState(secret: SecretObject | undefined, device: MailDevice): SecretState {
  if (!secret) return { kind: "absent" };
  return isOwnedBy(secret, device) ? { kind: "owned", secret } : { kind: "foreign", secret };
}

export interface DeviceTiming {
  /** A device's password is regenerated at most once in this interval (rotation storms). */
  minRotationIntervalMs: number;
  /** How long a Secret outlives a policy change that stopped its password working. */
  suspensionGraceMs: number;
}

export interface DeviceInput {
  device: MailDevice;
  standing: AddressStanding;
  secret: SecretState;
  /** The owned Secret read back (undefined unless the address issues and the Secret is ours). */
  credential: CredentialCheck | undefined;
  /** The hash the password database holds for this device now, if any. */
  publishedHash: string | undefined;
  /** Set when the device is beyond its address's device limit. */
  overLimit: { limit: number } | undefined;
  /** The password database had no room left for the device's address. */
  databaseFull: boolean;
  now: Date;
  timing: DeviceTiming;
}

export type CredentialAction =
  /** Generate a new password and write it to the Secret. */
  | { type: "issue"; reason: Reason; message: string; warning: boolean }
  /** Rewrite the Secret's other fields (settings, labels), keeping the password. */
  | { type: "refresh"; record: PasswordRecord }
  /** Delete the owned Secret once the database no longer accepts its password. */
  | { type: "revoke" }
  | { type: "none" };

export interface Readiness {
  status: "True" | "False";
  reason: Reason;
  message: string;
}

export interface DeviceDecision {
  action: CredentialAction;
  ready: Readiness;
  /** status.suspendedAt after this decision. */
  suspendedAt: string | undefined;
  /** Look again after this long (a pending rotation, a suspension's end). */
  requeueAfterMs?: number | undefined;
}

export function deviceKey(device: MailDevice): string {
  return `${device.metadata.namespace}/${device.metadata.name}`;
}

const iso = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

/** Why the device's password must be replaced, if it must (rotate values not yet acted on). */
function rotation(
  input: DeviceInput,
  record: PasswordRecord,
): { reason: Reason; message: string } | undefined {
  const { device, standing } = input;
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

/** Why a Secret's record cannot stand, as the reason of the new password. */
function replacement(check: CredentialCheck, secretName: string) {
  switch (check.kind) {
    case "edited":
      return {
        reason: reasons.PasswordReplaced,
        message: `The password in Secret ${secretName} was changed outside devicepass; a new one was generated.`,
        warning: true,
      };
    case "tampered":
      return {
        reason: reasons.CredentialTampered,
        message: `The credential record in Secret ${secretName} does not carry devicepass's seal (it was changed outside devicepass); a new password was generated.`,
        warning: true,
      };
    case "outdated":
      return {
        reason: reasons.Reissued,
        message:
          check.why === "address"
            ? `The password in Secret ${secretName} was issued for another mail address; a new one was generated.`
            : `The password's hash in Secret ${secretName} has other argon2id parameters than configured; a new password was generated.`,
        warning: false,
      };
    case "valid":
      return undefined;
  }
}

/** What standing, deletion, protocols and the device limit decide, before the credential itself. */
export interface StandingInput {
  device: MailDevice;
  standing: AddressStanding;
  overLimit: { limit: number } | undefined;
  now: Date;
  timing: DeviceTiming;
  /** The device has a Secret of its own (kept through a suspension's grace period). */
  owned: boolean;
  /** It has anything the mail server accepts, or could: a Secret, an entry, a live invitation. */
  holdsCredential: boolean;
}

/**
 * The decision when the device may not have a password now (deleted, its address not issuing,
 * a protocol or the device limit refused): revoke at once, or suspend for the grace period. Shared
 * by both deliveries; undefined when the device may hold a password.
 */
export function standingDecision(input: StandingInput): DeviceDecision | undefined {
  const { device, standing, now, timing, owned, holdsCredential } = input;

  /** The user's own act (deletion, an address that is gone): revoke at once. */
  const revokeWith = (reason: Reason, message: string): DeviceDecision => ({
    action: holdsCredential ? { type: "revoke" } : { type: "none" },
    ready: { status: "False", reason, message },
    suspendedAt: undefined,
  });
  /** Cluster policy: the database entry goes at once, the Secret only after the grace period. */
  const suspendWith = (reason: Reason, message: string): DeviceDecision => {
    if (!suspendingReasons.has(reason)) return revokeWith(reason, message);
    const ready = { status: "False" as const, reason, message };
    if (!owned)
      return {
        action: holdsCredential ? { type: "revoke" } : { type: "none" },
        ready,
        suspendedAt: undefined,
      };
    const since = device.status?.suspendedAt ?? iso(now);
    const remaining = Date.parse(since) + timing.suspensionGraceMs - now.getTime();
    if (remaining <= 0) return { action: { type: "revoke" }, ready, suspendedAt: since };
    return { action: { type: "none" }, ready, suspendedAt: since, requeueAfterMs: remaining };
  };

  if (device.metadata.deletionTimestamp) return revokeWith(reasons.Deleting, "The device is being deleted.");
  switch (standing.state) {
    case "NotFound":
      return revokeWith(
        reasons.AddressNotFound,
        `MailAddress ${device.spec.address} does not exist in namespace ${device.metadata.namespace}.`,
      );
    case "Deleting":
      return revokeWith(reasons.AddressDeleting, `MailAddress ${device.spec.address} is being deleted.`);
    case "Unsupported":
      return revokeWith(
        reasons.AddressUnsupported,
        `${standing.address.spec.address} cannot be served by the mail server: its local part must hold only letters, digits, '.', '-' and '_', and the address must fit the password database.`,
      );
    case "Conflict":
      return suspendWith(
        reasons.AddressConflict,
        standing.reserved
          ? `${standing.address.spec.address} is reserved for another namespace by its MailDomain; no credentials are issued.`
          : `${standing.address.spec.address} is owned by another namespace, which claimed it first; no credentials are issued.`,
      );
    case "Duplicate":
      return suspendWith(
        reasons.AddressConflict,
        `${standing.address.spec.address} is claimed by the older MailAddress ${standing.winner.metadata.name} of this namespace.`,
      );
    case "DomainNotFound":
      return suspendWith(
        reasons.DomainNotFound,
        `No MailDomain ${standing.domainName} admits this device's address.`,
      );
    case "NamespaceNotAllowed":
      return suspendWith(
        reasons.NamespaceNotAllowed,
        `MailDomain ${standing.domain.metadata.name} does not admit namespace ${device.metadata.namespace}.`,
      );
    case "Issuing":
      break;
  }
  const { forbidden } = deviceProtocolsUnder(device, standing.domain);
  if (forbidden.length > 0) {
    return suspendWith(
      reasons.ProtocolNotAllowed,
      `MailDomain ${standing.domain?.metadata.name} does not allow ${forbidden.join(", ")} for its devices.`,
    );
  }
  if (input.overLimit) {
    return suspendWith(
      reasons.DeviceLimitExceeded,
      `MailAddress ${device.spec.address} already has ${input.overLimit.limit} older devices, its limit (devicePolicy.maxDevicesPerAddress); this device gets no password.`,
    );
  }
  return undefined;
}

export function decideDevice(input: DeviceInput): DeviceDecision {
  const { device, secret, publishedHash, now, timing } = input;
  const owned = secret.kind === "owned";
  const verdict = standingDecision({
    device,
    standing: input.standing,
    overLimit: input.overLimit,
    now,
    timing,
    owned,
    holdsCredential: owned || publishedHash !== undefined,
  });
  if (verdict) return verdict;

  if (secret.kind === "foreign") {
    return {
      action: { type: "none" },
      ready: {
        status: "False",
        reason: reasons.SecretConflict,
        message: `Secret ${secret.secret.metadata.name} exists and is not managed by this MailDevice; it is left untouched.`,
      },
      suspendedAt: undefined,
    };
  }

  const publishing = (message: string): Readiness => ({
    status: "False",
    reason: reasons.Publishing,
    message,
  });
  /**
   * A new password, unless the last one is younger than the minimum rotation interval: the last
   * one by our own status, or by the sealed record when that is newer (status is written late).
   */
  const issue = (
    why: { reason: Reason; message: string; warning: boolean },
    current?: PasswordRecord,
  ): DeviceDecision => {
    const times = [device.status?.passwordGeneratedAt, current?.generatedAt].flatMap((t) =>
      t === undefined ? [] : [Date.parse(t)],
    );
    const last = times.length > 0 ? Math.max(...times) : undefined;
    const wait = last === undefined ? 0 : last + timing.minRotationIntervalMs - now.getTime();
    if (wait > 0) {
      return {
        action: { type: "none" },
        ready: publishing(
          `A new password is due (${why.reason}); devicepass issues at most one per device every ${Math.round(timing.minRotationIntervalMs / 1000)} s.`,
        ),
        suspendedAt: undefined,
        requeueAfterMs: wait,
      };
    }
    return {
      action: { type: "issue", ...why },
      ready: publishing("A new password is being issued."),
      suspendedAt: undefined,
    };
  };

  if (secret.kind === "absent") {
    return device.status?.passwordGeneratedAt !== undefined
      ? issue({
          reason: reasons.Reissued,
          message: "The credential Secret was deleted; a new password was generated.",
          warning: false,
        })
      : issue({
          reason: reasons.Issued,
          message: "A new password was generated for the device.",
          warning: false,
        });
  }
  const check = input.credential ?? { kind: "tampered" };
  const replace = replacement(check, secret.secret.metadata.name);
  if (replace) return issue(replace);
  const record = (check as Extract<CredentialCheck, { kind: "valid" }>).record;
  const rotate = rotation(input, record);
  if (rotate) {
    const decision = issue({ ...rotate, warning: false }, record);
    // The current password keeps working until the rotation is due.
    if (decision.action.type === "none")
      return {
        ...decision,
        action: { type: "refresh", record },
        ready: readiness(input, record, secret.secret.metadata.name),
      };
    return decision;
  }
  return {
    action: { type: "refresh", record },
    ready: readiness(input, record, secret.secret.metadata.name),
    suspendedAt: undefined,
  };
}

function readiness(input: DeviceInput, record: PasswordRecord, secretName: string): Readiness {
  if (input.databaseFull)
    return {
      status: "False",
      reason: reasons.DatabaseFull,
      message: `The password database has no room for this address's devices now; the password in Secret ${secretName} is not accepted yet. A cluster administrator should raise passdb.shards.`,
    };
  return input.publishedHash === record.hash
    ? {
        status: "True",
        reason: reasons.CredentialsReady,
        message: `The mail server accepts the password in Secret ${secretName}.`,
      }
    : {
        status: "False",
        reason: reasons.Publishing,
        message: `The password in Secret ${secretName} is waiting for the password database.`,
      };
}

/**
 * The database entry a device may have: only a live device within its address's limit, of an
 * issuing address, whose own Secret holds a sealed, intact record with a hash of the configured
 * shape. Anything else must not be accepted by the mail server.
 */
export function publishableEntry(input: {
  device: MailDevice;
  standing: AddressStanding;
  secret: SecretState;
  credential: CredentialCheck | undefined;
  overLimit: boolean;
}): PassdbEntry | undefined {
  const { device, standing, secret, credential } = input;
  if (device.metadata.deletionTimestamp || standing.state !== "Issuing" || input.overLimit) return undefined;
  if (secret.kind !== "owned" || secret.secret.metadata.deletionTimestamp) return undefined;
  if (credential?.kind !== "valid") return undefined;
  const { protocols, forbidden } = deviceProtocolsUnder(device, standing.domain);
  if (forbidden.length > 0 || protocols.length === 0) return undefined;
  return {
    address: standing.mailAddress,
    device: deviceKey(device),
    protocols,
    hash: credential.record.hash,
  };
}

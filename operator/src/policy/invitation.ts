// Pure decisions about one MailDevice with delivery Invitation: is its invitation current, due
// for a new one, to be e-mailed, expired; may its redeemed password be published; what status and
// Ready say. No I/O: the invitation module gathers the input and acts on the decision.
import { reasons, type Reason } from "../api/conditions.ts";
import { invitationNames, invitationSecretName, rotateAnnotation } from "../api/names.ts";
import {
  defaultInvitationValidFor,
  invitationEmailPattern,
  type MailDevice,
  type MailDeviceStatus,
} from "../api/schemas.ts";
import { parseDuration } from "../api/duration.ts";
import { isConfiguredHash, type Argon2Parameters } from "../credentials/password.ts";
import {
  InvalidInvitationRecord,
  parseInvitationRecord,
  verifyInvitationSeal,
  type ConfigMapObject,
  type InvitationRecord,
} from "../invitations/record.ts";
import type { PassdbEntry } from "../passdb/format.ts";
import {
  deviceKey,
  standingDecision,
  type DeviceTiming,
  type Readiness,
  type SecretState,
} from "./device.ts";
import { deviceProtocolsUnder } from "./domain.ts";
import type { LinkCheck, LinkRecord } from "./invitation-link.ts";
import type { AddressStanding } from "./ownership.ts";

export function usesInvitation(device: MailDevice): boolean {
  return device.spec.delivery === "Invitation";
}

/** spec.invitation.validFor in milliseconds (the API server checked its bounds). */
export function validForMs(device: MailDevice): number {
  return parseDuration(device.spec.invitation?.validFor ?? defaultInvitationValidFor)!;
}

const deliverable = new RegExp(invitationEmailPattern);

/** Where the link is e-mailed: spec.invitation.email, else spec.user.email, if one plain address. */
export function invitationRecipient(device: MailDevice): string | undefined {
  const to = device.spec.invitation?.email ?? device.spec.user?.email;
  return to !== undefined && deliverable.test(to) ? to : undefined;
}

/** An invitation record as the device sees it: trusted only under the operator's seal, for this device. */
export type RecordView =
  | { kind: "missing" }
  /** Not a readable record, not sealed by the operator, or for another device. */
  | { kind: "invalid"; why: string }
  | { kind: "pending"; record: InvitationRecord }
  | { kind: "redeemed"; record: InvitationRecord; hash: string; redeemedAt: string }
  | { kind: "revoked"; record: InvitationRecord };

export function viewRecord(
  configMap: ConfigMapObject | undefined,
  device: MailDevice,
  key: Buffer,
): RecordView {
  if (!configMap) return { kind: "missing" };
  let record: InvitationRecord;
  try {
    record = parseInvitationRecord(configMap);
  } catch (error) {
    if (error instanceof InvalidInvitationRecord) return { kind: "invalid", why: error.message };
    throw error;
  }
  if (!verifyInvitationSeal(record, key)) return { kind: "invalid", why: "its seal does not verify" };
  const d = record.invitation.device;
  if (
    d.uid !== device.metadata.uid ||
    d.namespace !== device.metadata.namespace ||
    d.name !== device.metadata.name
  )
    return { kind: "invalid", why: "it invites to another device" };
  switch (record.data.state) {
    case "pending":
      return { kind: "pending", record };
    case "revoked":
      return { kind: "revoked", record };
    case "redeemed":
      return {
        kind: "redeemed",
        record,
        hash: record.data.passwordHash!,
        redeemedAt: record.data.redeemedAt!,
      };
  }
}

/** The link Secret and the record it names, as one device's invitation. */
export interface InvitationWorld {
  link: SecretState;
  /** The link Secret read back (only when it is ours). */
  check: LinkCheck | undefined;
  /** The record the sealed bookkeeping names (missing without a valid link). */
  record: RecordView;
  /** Records labelled with the device's uid that are not revoked, by name. */
  liveRecords: string[];
}

/** Why a redeemed hash can be the device's password now, or undefined: the checks of docs/invitations.md. */
function redeemedHash(
  world: InvitationWorld,
  mailAddress: string,
  argon2: Argon2Parameters,
): { hash: string; redeemedAt: string } | "outdated-address" | "outdated-parameters" | undefined {
  if (world.check?.kind !== "valid" || world.record.kind !== "redeemed") return undefined;
  const { record, hash, redeemedAt } = world.record;
  // Redeemed by the portal before the sealed expiry (a portal that lies about the time can only
  // redeem what the operator has not revoked at expiry yet).
  if (Date.parse(redeemedAt) > Date.parse(record.invitation.expiresAt)) return undefined;
  if (record.invitation.address !== mailAddress) return "outdated-address";
  if (!isConfiguredHash(hash, argon2)) return "outdated-parameters";
  return { hash, redeemedAt };
}

/**
 * The database entry an invitation device may have: a live device within its address's limit,
 * of an issuing address, whose sealed link Secret names a record the operator sealed for this
 * device, redeemed, for this mail address, with a hash of the configured argon2id parameters.
 */
export function invitationEntry(input: {
  device: MailDevice;
  standing: AddressStanding;
  overLimit: boolean;
  world: InvitationWorld;
  argon2: Argon2Parameters;
}): PassdbEntry | undefined {
  const { device, standing, world } = input;
  if (device.metadata.deletionTimestamp || standing.state !== "Issuing" || input.overLimit) return undefined;
  if (world.link.kind !== "owned" || world.link.secret.metadata.deletionTimestamp) return undefined;
  const redeemed = redeemedHash(world, standing.mailAddress, input.argon2);
  if (typeof redeemed !== "object") return undefined;
  const { protocols, forbidden } = deviceProtocolsUnder(device, standing.domain);
  if (forbidden.length > 0 || protocols.length === 0) return undefined;
  return { address: standing.mailAddress, device: deviceKey(device), protocols, hash: redeemed.hash };
}

export interface InvitationInput {
  device: MailDevice;
  standing: AddressStanding;
  world: InvitationWorld;
  /** The hash the password database holds for this device now, if any. */
  publishedHash: string | undefined;
  overLimit: { limit: number } | undefined;
  databaseFull: boolean;
  argon2: Argon2Parameters;
  /** The operator has --portal-url: new links can be made. */
  portal: boolean;
  /** The operator has an SMTP relay: links can be e-mailed. */
  relay: boolean;
  now: Date;
  timing: DeviceTiming;
}

export type InvitationAction =
  /** Withdraw the invitation (if any) and issue a new one: new token, record, link Secret, e-mail. */
  | {
      type: "issue";
      reason: Reason;
      message: string;
      warning: boolean;
      record: Omit<LinkRecord, "tokenHash">;
    }
  /** Withdraw everything: revoke the device's records, then delete its link Secret. */
  | { type: "withdraw" }
  /** The current invitation stands: keep its Secret as devicepass wants it, and e-mail it if due. */
  | { type: "keep"; token: string | undefined; send: string | undefined }
  /** Revoke the current record: it expired unredeemed. */
  | { type: "expire"; recordName: string }
  | { type: "none" };

export interface InvitationDecision {
  action: InvitationAction;
  /** Records of the device to revoke besides (none for issue and withdraw, which revoke every live one). */
  revoke: string[];
  ready: Readiness;
  /** status.invitation after this decision. */
  status: MailDeviceStatus["invitation"];
  /** What status says of the password and rotations (from the sealed bookkeeping). */
  link: LinkRecord | undefined;
  redeemedAt: string | undefined;
  suspendedAt: string | undefined;
  requeueAfterMs?: number | undefined;
}

const iso = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

/** Requeues further out than this wait for the resync instead (a timer holds at most 2^31 ms anyway). */
export const maxRequeueMs = 24 * 3_600_000;

/** The rotate values not yet acted on by the current invitation, if any. */
function rotation(device: MailDevice, standing: AddressStanding, link: LinkRecord): string | undefined {
  const deviceRotate = device.metadata.annotations?.[rotateAnnotation];
  if (deviceRotate !== undefined && deviceRotate !== link.rotatedFor)
    return `${rotateAnnotation}=${deviceRotate}`;
  const addressRotate =
    standing.state === "Issuing" ? standing.address.metadata.annotations?.[rotateAnnotation] : undefined;
  if (addressRotate !== undefined && addressRotate !== link.addressRotatedFor)
    return `${rotateAnnotation}=${addressRotate} on MailAddress ${device.spec.address}`;
  return undefined;
}

export function decideInvitation(input: InvitationInput): InvitationDecision {
  const { device, standing, world, now, timing } = input;
  const owned = world.link.kind === "owned";
  const link = world.check?.kind === "valid" ? world.check.record : undefined;
  const current = link ? `${invitationNames.recordPrefix}${link.tokenHash}` : undefined;
  const strays = world.liveRecords.filter((name) => name !== current);

  const verdict = standingDecision({
    device,
    standing,
    overLimit: input.overLimit,
    now,
    timing,
    owned,
    holdsCredential: owned || world.liveRecords.length > 0 || input.publishedHash !== undefined,
  });
  if (verdict) {
    const withdraw = verdict.action.type === "revoke";
    return {
      action: withdraw ? { type: "withdraw" } : { type: "none" },
      // Through a suspension the invitation stands (and can be redeemed): re-admission publishes it.
      revoke: withdraw ? [] : strays,
      ready: verdict.ready,
      status: withdraw ? undefined : device.status?.invitation,
      link,
      redeemedAt: undefined,
      suspendedAt: verdict.suspendedAt,
      requeueAfterMs: verdict.requeueAfterMs,
    };
  }
  const secretName = invitationSecretName(device.metadata.name);
  if (world.link.kind === "foreign")
    return {
      action: { type: "none" },
      revoke: [],
      ready: {
        status: "False",
        reason: reasons.SecretConflict,
        message: `Secret ${secretName} exists and is not managed by this MailDevice; it is left untouched.`,
      },
      status: undefined,
      link: undefined,
      redeemedAt: undefined,
      suspendedAt: undefined,
    };
  if (world.link.kind === "absent")
    return device.status?.invitation === undefined
      ? issueDecision(input, {
          reason: reasons.InvitationIssued,
          message: `An invitation link was put in Secret ${secretName}.`,
          warning: false,
        })
      : issueDecision(input, {
          reason: reasons.Reissued,
          message: `The invitation Secret ${secretName} was deleted; its invitation was withdrawn and a new one issued.`,
          warning: false,
        });
  if (!link)
    return issueDecision(input, {
      reason: reasons.CredentialTampered,
      message: `The invitation record in Secret ${secretName} does not carry devicepass's seal (it was changed outside devicepass); its invitation was withdrawn and a new one issued.`,
      warning: true,
    });
  const rotate = rotation(device, standing, link);
  if (rotate) {
    const decision = issueDecision(input, {
      reason: reasons.Rotated,
      message: `The invitation was withdrawn for ${rotate} (its password, if redeemed, revoked) and a new one issued.`,
      warning: false,
    });
    if (decision.action.type !== "none" || decision.ready.reason === reasons.PortalNotConfigured)
      return decision;
    // Too soon after the last one: the current invitation stands until the rotation is due.
    const stands = currentInvitation(input, link, strays);
    const due = decision.requeueAfterMs!;
    return { ...stands, requeueAfterMs: Math.min(stands.requeueAfterMs ?? due, due) };
  }
  return currentInvitation(input, link, strays);
}

/** A new invitation (the current one, if any, withdrawn): unless too soon after the last, or no portal. */
function issueDecision(
  input: InvitationInput,
  why: { reason: Reason; message: string; warning: boolean },
): InvitationDecision {
  const { device, standing, world, now, timing } = input;
  const secretName = invitationSecretName(device.metadata.name);
  const link = world.check?.kind === "valid" ? world.check.record : undefined;
  const none = { link, redeemedAt: undefined, suspendedAt: undefined };
  if (!input.portal)
    return {
      ...none,
      action: { type: "none" },
      // Whatever made a new one due, the invitation it replaces no longer stands.
      revoke: world.liveRecords,
      ready: {
        status: "False",
        reason: reasons.PortalNotConfigured,
        message:
          "Delivery Invitation needs the invitation portal: the operator runs without --portal-url (chart: portal.publicUrl), so no link can be made.",
      },
      status: undefined,
    };
  const last = link?.issuedAt;
  const wait = last === undefined ? 0 : Date.parse(last) + timing.minRotationIntervalMs - now.getTime();
  if (wait > 0)
    return {
      ...none,
      action: { type: "none" },
      revoke: [],
      ready: {
        status: "False",
        reason: reasons.InvitationPending,
        message: `A new invitation is due (${why.reason}); devicepass issues at most one per device every ${Math.round(timing.minRotationIntervalMs / 1000)} s.`,
      },
      status: device.status?.invitation,
      requeueAfterMs: wait,
    };
  const expiresAt = iso(new Date(now.getTime() + validForMs(device)));
  const first = !link && device.status?.invitation === undefined;
  const addressRotate =
    standing.state === "Issuing" ? standing.address.metadata.annotations?.[rotateAnnotation] : undefined;
  return {
    action: {
      type: "issue",
      ...why,
      record: {
        issuedAt: iso(now),
        expiresAt,
        rotationCount: first ? 0 : (link?.rotationCount ?? device.status?.rotationCount ?? 0) + 1,
        // Every rotate value seen now counts as handled by this invitation: one per value.
        rotatedFor:
          device.metadata.annotations?.[rotateAnnotation] ??
          link?.rotatedFor ??
          device.status?.lastRotateValue,
        addressRotatedFor: addressRotate ?? link?.addressRotatedFor ?? device.status?.lastAddressRotateValue,
      },
    },
    revoke: [],
    ready: {
      status: "False",
      reason: reasons.InvitationPending,
      message: `A new invitation link is being put in Secret ${secretName}.`,
    },
    status: { state: "Pending", expiresAt },
    link: undefined,
    redeemedAt: undefined,
    suspendedAt: undefined,
  };
}

/** The decision about the invitation the sealed bookkeeping names, when no new one is due yet. */
function currentInvitation(input: InvitationInput, link: LinkRecord, strays: string[]): InvitationDecision {
  const { device, standing, world, now } = input;
  const secretName = invitationSecretName(device.metadata.name);
  const mailAddress = (standing as Extract<AddressStanding, { state: "Issuing" }>).mailAddress;
  const reissue = (reason: Reason, message: string, warning = true) =>
    issueDecision(input, { reason, message: `${message} A new invitation was issued.`, warning });
  const { expiresAt } = link;
  const expired = Date.parse(expiresAt) <= now.getTime();
  const known = { expiresAt, ...(link.sentAt ? { sentAt: link.sentAt } : {}) };
  const decision = (
    action: InvitationAction,
    ready: Readiness,
    status: NonNullable<MailDeviceStatus["invitation"]>,
    extra: Partial<InvitationDecision> = {},
  ): InvitationDecision => ({
    action,
    revoke: strays,
    ready,
    status,
    link,
    redeemedAt: undefined,
    suspendedAt: undefined,
    ...extra,
  });
  const expiredDecision = (action: InvitationAction) =>
    decision(
      action,
      {
        status: "False",
        reason: reasons.InvitationExpired,
        message: `The invitation in Secret ${secretName} expired on ${expiresAt} before it was redeemed; rotate the device (${rotateAnnotation}) for a new one.`,
      },
      { state: "Expired", ...known },
    );

  const view = world.record;
  switch (view.kind) {
    case "missing":
      return expired
        ? expiredDecision({ type: "none" })
        : reissue(reasons.Reissued, "The invitation's record was removed outside devicepass.");
    case "invalid":
      return reissue(
        reasons.CredentialTampered,
        `The invitation's record is not one devicepass wrote for this device (${view.why}).`,
      );
    case "revoked":
      return expired
        ? expiredDecision({ type: "none" })
        : reissue(reasons.Reissued, "The invitation's record was withdrawn outside devicepass.");
    case "pending": {
      if (view.record.invitation.address !== mailAddress)
        return reissue(reasons.Reissued, "The invitation was issued for another mail address.", false);
      if (expired)
        return expiredDecision({ type: "expire", recordName: view.record.configMap.metadata.name });
      const token = world.check?.kind === "valid" ? world.check.token : undefined;
      if (token === undefined)
        return reissue(
          reasons.InvitationReplaced,
          `The link in Secret ${secretName} was changed outside devicepass; its invitation was withdrawn.`,
        );
      const to = invitationRecipient(device);
      const until = `it can be redeemed until ${expiresAt}`;
      const message = link.sentAt
        ? `The invitation link was e-mailed to ${to ?? "the person"} on ${link.sentAt}, and is in Secret ${secretName}; ${until}.`
        : !to
          ? `The invitation link is in Secret ${secretName}, to pass on (no spec.invitation.email or spec.user.email to e-mail it to); ${until}.`
          : !input.relay
            ? `The invitation link is in Secret ${secretName}, to pass on: the operator has no SMTP relay (--smtp-host) to e-mail it to ${to}; ${until}.`
            : `The invitation link is in Secret ${secretName} and is being e-mailed to ${to}; ${until}.`;
      return decision(
        { type: "keep", token, send: !link.sentAt && input.relay ? to : undefined },
        {
          status: "False",
          reason: link.sentAt ? reasons.InvitationSent : reasons.InvitationPending,
          message,
        },
        { state: link.sentAt ? "Sent" : "Pending", ...known },
        // Expiry is acted on without anyone looking.
        { requeueAfterMs: Math.min(Date.parse(expiresAt) - now.getTime() + 1000, maxRequeueMs) },
      );
    }
    case "redeemed": {
      const redeemed = redeemedHash(world, mailAddress, input.argon2);
      if (redeemed === "outdated-address")
        return reissue(reasons.Reissued, "The invitation was redeemed for another mail address.", false);
      if (redeemed === "outdated-parameters")
        return reissue(
          reasons.Reissued,
          "The redeemed password's hash has other argon2id parameters than configured.",
          false,
        );
      if (!redeemed)
        return reissue(
          reasons.CredentialTampered,
          "The invitation's record says it was redeemed after it expired.",
        );
      const token = world.check?.kind === "valid" ? world.check.token : undefined;
      const ready: Readiness = input.databaseFull
        ? {
            status: "False",
            reason: reasons.DatabaseFull,
            message: `The password database has no room for this address's devices now; the password revealed on ${redeemed.redeemedAt} is not accepted yet. A cluster administrator should raise passdb.shards.`,
          }
        : input.publishedHash === redeemed.hash
          ? {
              status: "True",
              reason: reasons.CredentialsReady,
              message: `The mail server accepts the password the person revealed on ${redeemed.redeemedAt}.`,
            }
          : {
              status: "False",
              reason: reasons.Publishing,
              message: `The password revealed on ${redeemed.redeemedAt} is waiting for the password database.`,
            };
      return decision(
        { type: "keep", token, send: undefined },
        ready,
        { state: "Redeemed", ...known, redeemedAt: redeemed.redeemedAt },
        { redeemedAt: redeemed.redeemedAt },
      );
    }
  }
}

export interface RecordUpkeepInput {
  record: InvitationRecord;
  /** The MailDevice the record invites to exists (same uid), or its namespace is not the operator's to judge. */
  deviceExists: boolean;
  now: Date;
  /** How long a revoked record is kept after its expiry, so that its link says withdrawn or expired. */
  retentionMs: number;
}

export type RecordUpkeep =
  /** The setup window closed: the password's ciphertext goes (the portal removes it too, if it is still up). */
  | { type: "dropSetup" }
  /** Its device is gone (deleted past its finalizer): the record must give no password. */
  | { type: "revoke" }
  /** Revoked, and its retention is over: its link then says "not valid". */
  | { type: "delete" }
  | { type: "none" };

/** What a record needs on its own, whatever its device's controller does: one of these, and when to look again. */
export function recordUpkeep(input: RecordUpkeepInput): { action: RecordUpkeep; requeueAfterMs?: number } {
  const { record, now } = input;
  const t = now.getTime();
  const setupEnds = record.data.setupExpiresAt ? Date.parse(record.data.setupExpiresAt) : undefined;
  if (setupEnds !== undefined && setupEnds <= t) return { action: { type: "dropSetup" } };
  if (record.data.state !== "revoked" && !input.deviceExists) return { action: { type: "revoke" } };
  const deleteAt =
    record.data.state === "revoked" ? Date.parse(record.invitation.expiresAt) + input.retentionMs : undefined;
  if (deleteAt !== undefined && deleteAt <= t) return { action: { type: "delete" } };
  const next = Math.min(setupEnds ?? Infinity, deleteAt ?? Infinity);
  return {
    action: { type: "none" },
    ...(Number.isFinite(next) ? { requeueAfterMs: Math.min(next - t + 1000, maxRequeueMs) } : {}),
  };
}

// The MailDevice controller's path for delivery Invitation: gathers the device's invitation (its
// link Secret read back through the seal, the record the sealed bookkeeping names), decides with
// policy/invitation.ts, and acts: records in the operator's namespace, the `<device>-invitation`
// Secret, the e-mail through the relay, status. No credential Secret is ever written; the token
// exists only in the link Secret and the e-mail and is never logged.
import { Ready, reasons } from "../../api/conditions.ts";
import { invitationNames, invitationSecretName } from "../../api/names.ts";
import type { MailDevice, MailDeviceStatus } from "../../api/schemas.ts";
import type { OperatorContext } from "../../context.ts";
import { sendInvitationMail } from "../../invitations/mail.ts";
import { chooseLanguage } from "../../invitations/messages.ts";
import {
  desiredInvitationRecord,
  hmacInvitationSealer,
  parseInvitationRecord,
  revokedRecord,
  type ConfigMapObject,
} from "../../invitations/record.ts";
import { invitationLink, newInvitationToken, tokenHash } from "../../invitations/token.ts";
import { isAlreadyExists, isNotFound } from "../../kube/errors.ts";
import type { SecretObject } from "../../kube/objects.ts";
import { inNamespace, named, resources } from "../../kube/resources.ts";
import { setCondition } from "../../policy/conditions.ts";
import { deviceKey } from "../../policy/device.ts";
import { inheritedClientSettings } from "../../policy/domain.ts";
import {
  decideInvitation,
  type InvitationDecision,
  type InvitationWorld,
  type RecordView,
} from "../../policy/invitation.ts";
import { desiredLinkSecret, type LinkCheck, type LinkRecord } from "../../policy/invitation-link.ts";
import type { AddressStanding } from "../../policy/ownership.ts";
import { secretMatches } from "../../policy/secret.ts";
import {
  awaitChange,
  defaultErrorPolicy,
  requeueAfter,
  requeueWithBackoff,
  type Action,
  type Controller,
  type ErrorVerdict,
  type ReconcileContext,
} from "../../runtime/controller.ts";
import { applyStatus, type StatusWriter } from "../../runtime/status.ts";
import { gatherStanding, deviceLimit, isOverLimit } from "../gather.ts";
import { deleteDeviceSecret } from "./secret-deletion.ts";
import { gatherInvitation, onInvitationChange, recordSealKey, stateOf } from "../invitation-gather.ts";

type Log = ReconcileContext["log"];
const iso = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

export function registerInvitationTriggers(ctx: OperatorContext, controller: Controller): void {
  onInvitationChange(ctx, (namespace, name) => controller.enqueue(`${namespace}/${name}`));
}

/** A failed e-mail: retried by the controller's error policy, each attempt later than the last. */
export class InvitationMailError extends Error {
  override readonly name = "InvitationMailError";
  readonly attempt: number;
  constructor(message: string, attempt: number) {
    super(message);
    this.attempt = attempt;
  }
}

/** 5 s, 10 s, 20 s, … up to 10 minutes between attempts to e-mail one invitation. */
export function mailRetryDelayMs(attempt: number): number {
  return Math.min(5_000 * 2 ** Math.max(0, attempt - 1), 10 * 60_000);
}

/** The MailDevice controller's error policy: e-mail failures back off on their own scale. */
export function deviceErrorPolicy(error: unknown): ErrorVerdict {
  if (error instanceof InvitationMailError)
    return {
      retry: true,
      minDelayMs: mailRetryDelayMs(error.attempt),
      maxDelayMs: mailRetryDelayMs(error.attempt),
    };
  return defaultErrorPolicy(error);
}

/** Failed attempts to e-mail one link (its token hash) since the last success, and when the next is due. */
interface MailFailures {
  tokenHash: string;
  attempt: number;
  retryAt: number;
}

/** The failures of each device's current link, per operator. */
const mailFailures = new WeakMap<OperatorContext, Map<string, MailFailures>>();

function decide(ctx: OperatorContext, device: MailDevice, world: InvitationWorld): InvitationDecision {
  const standing = gatherStanding(ctx, device);
  const limit = deviceLimit(ctx, standing.state === "Issuing" ? standing.domain : undefined);
  const overLimit = standing.state === "Issuing" && isOverLimit(ctx.cache, device, limit);
  const mailAddress = standing.state === "Issuing" ? standing.mailAddress : undefined;
  return decideInvitation({
    device,
    standing,
    world,
    publishedHash: ctx.passdb.published(deviceKey(device))?.hash,
    overLimit: overLimit ? { limit } : undefined,
    databaseFull: mailAddress !== undefined && ctx.database.leftOut.has(mailAddress),
    argon2: ctx.config.argon2,
    portal: ctx.config.portalUrl !== undefined,
    relay: ctx.config.smtp !== undefined,
    now: ctx.now(),
    timing: {
      minRotationIntervalMs: ctx.config.minRotationIntervalMs,
      suspensionGraceMs: ctx.config.suspensionGraceMs,
    },
  });
}

/** Revokes a record (its link then says withdrawn, or expired); an unreadable one is deleted. */
async function revokeRecord(ctx: OperatorContext, name: string, because: string): Promise<void> {
  const namespace = ctx.config.operatorNamespace;
  const configMap = ctx.cache.invitationRecords.get(`${namespace}/${name}`);
  if (!configMap || stateOf(configMap) === "revoked") return;
  const ref = named(resources.configMaps, namespace, name);
  try {
    let parsed;
    try {
      parsed = parseInvitationRecord(configMap);
    } catch {
      await ctx.client.delete(ref, {
        uid: configMap.metadata.uid!,
        resourceVersion: configMap.metadata.resourceVersion!,
      });
      return;
    }
    const revoked = revokedRecord(parsed);
    revoked.metadata = {
      ...revoked.metadata,
      annotations: { ...revoked.metadata.annotations, [invitationNames.revokedBecauseAnnotation]: because },
    };
    const written = await ctx.client.replace<ConfigMapObject>(ref, revoked);
    ctx.cache.invitationRecords.assumeWritten(configMap.metadata.resourceVersion, written);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

type WriteResult = { kind: "written"; secret: SecretObject } | { kind: "exists"; secret: SecretObject };

/** Writes the link Secret over the one we read, or creates it; a create that finds one returns it. */
async function writeLink(
  ctx: OperatorContext,
  device: MailDevice,
  current: SecretObject | undefined,
  desired: SecretObject,
  fieldManager: string,
): Promise<WriteResult> {
  const ns = device.metadata.namespace!;
  let result: SecretObject;
  if (!current) {
    try {
      result = await ctx.client.create<SecretObject>(inNamespace(resources.secrets, ns), desired);
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      return {
        kind: "exists",
        secret: await ctx.client.get<SecretObject>(named(resources.secrets, ns, desired.metadata.name)),
      };
    }
  } else {
    desired.metadata.resourceVersion = current.metadata.resourceVersion;
    result = await ctx.client.apply<SecretObject>(
      named(resources.secrets, ns, current.metadata.name),
      desired,
      fieldManager,
    );
  }
  ctx.cache.invitationLinks.assumeWritten(current?.metadata.resourceVersion, result);
  return { kind: "written", secret: result };
}

const ownedLink = (world: InvitationWorld) => (world.link.kind === "owned" ? world.link.secret : undefined);

/** A new invitation: a pending record in the operator's namespace, then the link Secret pointing at it. */
async function issue(
  ctx: OperatorContext,
  device: MailDevice,
  world: InvitationWorld,
  action: Extract<InvitationDecision["action"], { type: "issue" }>,
  fieldManager: string,
  log: Log,
): Promise<WriteResult> {
  const standing = gatherStanding(ctx, device) as Extract<AddressStanding, { state: "Issuing" }>;
  for (const name of world.liveRecords) await revokeRecord(ctx, name, action.reason);
  const token = newInvitationToken();
  const hash = tokenHash(token);
  const language = device.spec.invitation?.language;
  const record = desiredInvitationRecord({
    namespace: ctx.config.operatorNamespace,
    tokenHash: hash,
    device,
    address: standing.mailAddress,
    expiresAt: new Date(action.record.expiresAt),
    passwordLength: standing.domain?.spec.devicePolicy?.passwordLength ?? ctx.config.passwordLength,
    argon2: ctx.config.argon2,
    clientSettings: inheritedClientSettings(
      ctx.config.defaultClientSettings,
      standing.domain?.spec.clientSettings,
      standing.address.spec.clientSettings,
    ),
    ...(language ? { language: chooseLanguage(language) } : {}),
    seal: hmacInvitationSealer(recordSealKey(ctx.seal)),
  });
  const created = await ctx.client.create<ConfigMapObject>(
    inNamespace(resources.configMaps, ctx.config.operatorNamespace),
    record,
  );
  ctx.cache.invitationRecords.assumeWritten(undefined, created);
  const link: LinkRecord = { tokenHash: hash, ...action.record };
  const desired = desiredLinkSecret({
    device,
    portalUrl: ctx.config.portalUrl!,
    token,
    record: link,
    seal: ctx.seal,
  });
  const result = await writeLink(ctx, device, ownedLink(world), desired, fieldManager);
  if (result.kind === "exists") {
    // Someone else's Secret of that name: this invitation goes, unseen.
    await ctx.client
      .delete(named(resources.configMaps, ctx.config.operatorNamespace, created.metadata.name), {
        uid: created.metadata.uid!,
      })
      .catch((error: unknown) => {
        if (!isNotFound(error)) throw error;
      });
    return result;
  }
  ctx.metrics.credential(action.reason === reasons.InvitationIssued ? "issued" : "rotated");
  ctx.events.record(
    device,
    action.warning ? "Warning" : "Normal",
    action.reason,
    `${action.message} It can be redeemed until ${action.record.expiresAt}.`,
  );
  log.info(
    { reason: action.reason, secret: result.secret.metadata.name, expiresAt: action.record.expiresAt },
    "issued an invitation",
  );
  return result;
}

/**
 * E-mails the link (rebuilt from the verified token and the configured portal), then records that
 * it was sent. After a failure, a reconcile that some watch event brings before the backoff is
 * over sends nothing and says how long to wait (a relay that is down is not hammered).
 */
async function send(
  ctx: OperatorContext,
  device: MailDevice,
  world: InvitationWorld,
  to: string,
  token: string,
  fieldManager: string,
  log: Log,
): Promise<{ retryInMs?: number }> {
  const check = world.check as Extract<LinkCheck, { kind: "valid" }>;
  const view = world.record as Extract<RecordView, { kind: "pending" }>;
  // The bookkeeping says which token; the record the operator sealed says what the e-mail tells.
  if (tokenHash(token) !== check.record.tokenHash || view.kind !== "pending") return {};
  const link = invitationLink(ctx.config.portalUrl!, token);
  const failures = mailFailures.get(ctx) ?? new Map<string, MailFailures>();
  mailFailures.set(ctx, failures);
  const key = deviceKey(device);
  // A new link (rotation) starts afresh.
  const failed = failures.get(key)?.tokenHash === check.record.tokenHash ? failures.get(key) : undefined;
  const wait = failed ? failed.retryAt - ctx.now().getTime() : 0;
  if (wait > 0) return { retryInMs: wait };
  try {
    const sent = await sendInvitationMail(ctx.config.smtp!, to, view.record.invitation, link);
    log.info({ response: sent.response }, "e-mailed an invitation");
  } catch (error) {
    const attempt = (failed?.attempt ?? 0) + 1;
    failures.set(key, {
      tokenHash: check.record.tokenHash,
      attempt,
      retryAt: ctx.now().getTime() + mailRetryDelayMs(attempt),
    });
    const why = (error as Error).message;
    const retryInS = Math.round(mailRetryDelayMs(attempt) / 1000);
    ctx.events.record(
      device,
      "Warning",
      reasons.InvitationMailFailed,
      `The invitation could not be e-mailed to ${to}: ${why}. Retrying in ${retryInS} s; the link is in Secret ${invitationSecretName(device.metadata.name)}.`,
    );
    throw new InvitationMailError(`e-mailing the invitation failed: ${why}`, attempt);
  }
  failures.delete(key);
  const sentAt = iso(ctx.now());
  ctx.events.record(device, "Normal", reasons.InvitationSent, `The invitation link was e-mailed to ${to}.`);
  const desired = desiredLinkSecret({
    device,
    portalUrl: ctx.config.portalUrl!,
    token,
    record: { ...check.record, sentAt },
    seal: ctx.seal,
  });
  await writeLink(ctx, device, ownedLink(world), desired, fieldManager);
  return {};
}

/** Acts on one decision; returns whether it changed anything (then the world is gathered again). */
async function act(
  ctx: OperatorContext,
  device: MailDevice,
  world: InvitationWorld,
  decision: InvitationDecision,
  fieldManager: string,
  log: Log,
): Promise<{ changed: boolean; linkOverride?: SecretObject; mailRetryInMs?: number }> {
  let changed = false;
  for (const name of decision.revoke) {
    await revokeRecord(ctx, name, "Superseded");
    changed = true;
  }
  const { action } = decision;
  switch (action.type) {
    case "issue": {
      const result = await issue(ctx, device, world, action, fieldManager, log);
      // A Secret of that name outside our label-filtered cache: decide again with it.
      return { changed: true, linkOverride: result.kind === "exists" ? result.secret : undefined };
    }
    case "withdraw": {
      for (const name of world.liveRecords) await revokeRecord(ctx, name, "Withdrawn");
      const secret = ownedLink(world);
      // The entry goes first (the record is no longer redeemed); then the Secret.
      if (secret && ctx.passdb.published(deviceKey(device)) === undefined)
        await deleteLink(ctx, device, secret, log);
      return { changed: changed || world.liveRecords.length > 0 };
    }
    case "expire":
      await revokeRecord(ctx, action.recordName, "Expired");
      log.info("an invitation expired unredeemed");
      return { changed: true };
    case "keep": {
      const current = ownedLink(world);
      const check = world.check;
      // A link of an earlier --portal-url, or labels someone removed: the Secret as devicepass wants it.
      if (action.token && current && check?.kind === "valid" && ctx.config.portalUrl) {
        const desired = desiredLinkSecret({
          device,
          portalUrl: ctx.config.portalUrl,
          token: action.token,
          record: check.record,
          seal: ctx.seal,
        });
        if (!secretMatches(current, desired)) {
          await writeLink(ctx, device, current, desired, fieldManager);
          changed = true;
        }
      }
      if (action.send && action.token) {
        const { retryInMs } = await send(ctx, device, world, action.send, action.token, fieldManager, log);
        if (retryInMs !== undefined) return { changed, mailRetryInMs: retryInMs };
        changed = true;
      }
      return { changed };
    }
    case "none":
      return { changed };
  }
}

function deleteLink(ctx: OperatorContext, device: MailDevice, secret: SecretObject, log: Log): Promise<void> {
  return deleteDeviceSecret(ctx, device, secret, log, {
    event: `The invitation was withdrawn (its password, if redeemed, revoked) and Secret ${secret.metadata.name} deleted.`,
    log: "withdrew an invitation",
  });
}

/** The most passes of act → gather again in one reconcile (a bug must not spin). */
const maxRounds = 4;

export async function applyInvitationDevice(
  ctx: OperatorContext,
  writer: StatusWriter<MailDevice>,
  device: MailDevice,
  log: Log,
): Promise<Action> {
  let world = gatherInvitation(ctx, device);
  let decision = decide(ctx, device, world);
  let mailError: InvitationMailError | undefined;
  let mailRetryInMs: number | undefined;
  for (let round = 0; round < maxRounds; round++) {
    let result;
    try {
      result = await act(ctx, device, world, decision, writer.fieldManager, log);
    } catch (error) {
      if (!(error instanceof InvitationMailError)) throw error;
      mailError = error;
      break;
    }
    mailRetryInMs = result.mailRetryInMs;
    if (!result.changed) break;
    world = gatherInvitation(ctx, device, result.linkOverride);
    decision = decide(ctx, device, world);
    if (round === maxRounds - 1) return requeueWithBackoff;
  }
  await writeStatus(ctx, writer, device, decision);
  // Reported (status says Pending, an event says why): now the error policy's backoff.
  if (mailError) throw mailError;
  if (decision.ready.reason === reasons.SecretConflict) return requeueWithBackoff;
  const after = Math.min(decision.requeueAfterMs ?? Infinity, mailRetryInMs ?? Infinity);
  return after !== Infinity ? requeueAfter(Math.max(0, after)) : awaitChange;
}

/** Deleting: done once every record is revoked, the database no longer holds the device and the link Secret is gone. */
export async function cleanupInvitationDevice(
  ctx: OperatorContext,
  device: MailDevice,
  log: Log,
): Promise<Action | "done"> {
  const world = gatherInvitation(ctx, device);
  for (const name of world.liveRecords) await revokeRecord(ctx, name, "Deleted");
  if (ctx.passdb.published(deviceKey(device)) !== undefined) return awaitChange; // the view brings us back
  const secret = ownedLink(world);
  if (secret) {
    await deleteLink(ctx, device, secret, log);
    return awaitChange; // the Secret's deletion brings us back
  }
  mailFailures.get(ctx)?.delete(deviceKey(device));
  return "done";
}

async function writeStatus(
  ctx: OperatorContext,
  writer: StatusWriter<MailDevice>,
  device: MailDevice,
  decision: InvitationDecision,
): Promise<void> {
  const previous = device.status ?? {};
  const standing = gatherStanding(ctx, device);
  if (decision.status?.state === "Redeemed" && previous.invitation?.state !== "Redeemed")
    ctx.events.record(
      device,
      "Normal",
      reasons.InvitationRedeemed,
      `The person opened the invitation and revealed the password on ${decision.status.redeemedAt}.`,
    );
  const { link } = decision;
  const status: MailDeviceStatus = {
    observedGeneration: device.metadata.generation,
    conditions: setCondition(
      previous.conditions,
      { type: Ready, ...decision.ready },
      device.metadata.generation,
      ctx.now(),
    ),
    address: standing.state === "Issuing" ? standing.mailAddress : undefined,
    // Delivery Invitation keeps no password in any Secret.
    secretName: undefined,
    passwordGeneratedAt: decision.redeemedAt,
    rotationCount: link?.rotationCount ?? previous.rotationCount,
    lastRotateValue: link?.rotatedFor ?? previous.lastRotateValue,
    lastAddressRotateValue: link?.addressRotatedFor ?? previous.lastAddressRotateValue,
    suspendedAt: decision.suspendedAt,
    invitation: decision.status,
  };
  await applyStatus(writer, device, status);
}

// The MailDevice controller: issues, rotates, suspends and revokes a device's password (gather →
// decide → act) and reports it in status and events. The password database itself is the
// passdb controller's: a Secret counts for the mail server only once that controller publishes it.
import { MailServerSynced, Ready, reasons, type Reason } from "../../api/conditions.ts";
import { finalizers, labels, rotateAnnotation } from "../../api/names.ts";
import type { Condition, MailDevice, MailDeviceStatus } from "../../api/schemas.ts";
import { controllerNames, type OperatorContext } from "../../context.ts";
import { generatePassword, hashPassword, passwordDigest } from "../../credentials/password.ts";
import { isAlreadyExists } from "../../kube/errors.ts";
import type { SecretObject } from "../../kube/objects.ts";
import { inNamespace, named, resources } from "../../kube/resources.ts";
import { setCondition } from "../../policy/conditions.ts";
import { decideDevice, deviceKey, secretState, type DeviceDecision } from "../../policy/device.ts";
import { inheritedClientSettings } from "../../policy/domain.ts";
import type { AddressStanding } from "../../policy/ownership.ts";
import {
  desiredSecret,
  labelIfValid,
  readPasswordRecord,
  secretMatches,
  type PasswordRecord,
} from "../../policy/secret.ts";
import {
  awaitChange,
  requeueAfter,
  requeueWithBackoff,
  type Action,
  type Reconcile,
  type ReconcileContext,
} from "../../runtime/controller.ts";
import { finalizer } from "../../runtime/finalizer.ts";
import { applyStatus, type StatusWriter } from "../../runtime/status.ts";
import { usesInvitation } from "../../policy/invitation.ts";
import { credentialOf, gatherDevice, secretNameOf, type DeviceWorld } from "../gather.ts";
import { applyInvitationDevice, cleanupInvitationDevice } from "./invitation.ts";
import { deleteDeviceSecret } from "./secret-deletion.ts";

const fieldManager = controllerNames.device;

/** The status fields this controller writes (status.lastUsedAt is another controller's). */
const statusFields = [
  "observedGeneration",
  "conditions",
  "address",
  "secretName",
  "passwordGeneratedAt",
  "rotationCount",
  "lastRotateValue",
  "lastAddressRotateValue",
  "suspendedAt",
  "invitation",
] as const satisfies readonly (keyof MailDeviceStatus)[];

const iso = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

/** Devices whose current password some Dovecot pod does not have yet: a new report looks again. */
export type WaitingForMailServer = Set<string>;

export function reconcileMailDevice(
  ctx: OperatorContext,
  waiting: WaitingForMailServer = new Set(),
): Reconcile {
  const statusWriter: StatusWriter<MailDevice> = {
    client: ctx.client,
    resource: resources.mailDevices,
    fieldManager,
    events: ctx.events,
    cache: ctx.cache.devices,
    fields: statusFields,
    // status.conditions also holds nothing of another controller's today; owning only these keeps it so.
    conditionTypes: [Ready, MailServerSynced],
    quietReasons: new Set([
      reasons.Publishing,
      reasons.MailServerSyncing,
      reasons.InvitationPending,
      reasons.InvitationSent,
    ]),
  };
  return async (key, { log }) => {
    const device = ctx.cache.devices.get(key);
    if (!device) return awaitChange; // gone: its finalizer already revoked everything
    return finalizer(
      {
        client: ctx.client,
        resource: resources.mailDevices,
        finalizer: finalizers.device,
        fieldManager,
        // The address label is what `kubectl delete maildevices -l mail.devicepass.io/address=…` selects.
        labels: labelIfValid(labels.address, device.spec.address),
      },
      device,
      {
        // Delivery is immutable: a device takes one path all its life (controllers/mail-device/invitation.ts).
        apply: (live) =>
          usesInvitation(live)
            ? applyInvitationDevice(ctx, statusWriter, live, log)
            : applyDevice(ctx, statusWriter, waiting, live, log),
        cleanup: (deleting) =>
          usesInvitation(deleting)
            ? cleanupInvitationDevice(ctx, deleting, log)
            : cleanupDevice(ctx, deleting, log),
      },
    );
  };
}

/** Deleting: done once the database no longer holds the device and no Secret of ours is left. */
async function cleanupDevice(
  ctx: OperatorContext,
  device: MailDevice,
  log: ReconcileContext["log"],
): Promise<Action | "done"> {
  const world = gatherDevice(ctx, device);
  if (ctx.passdb.published(deviceKey(device)) !== undefined) return awaitChange; // the view brings us back
  if (world.secret.kind === "owned") {
    await revoke(ctx, device, world.secret.secret, log);
    return awaitChange; // the Secret's deletion brings us back
  }
  return "done";
}

async function applyDevice(
  ctx: OperatorContext,
  statusWriter: StatusWriter<MailDevice>,
  waiting: WaitingForMailServer,
  device: MailDevice,
  log: ReconcileContext["log"],
): Promise<Action> {
  let world = gatherDevice(ctx, device);
  let decision = decide(ctx, device, world);
  let written: SecretObject | undefined;
  if (decision.action.type === "issue") {
    let result = await issue(ctx, device, world, decision, log);
    if (result.kind === "exists") {
      // A Secret of that name outside our label-filtered cache: someone else's, or ours with its
      // labels removed. Decide again with it: ours keeps its password if its record holds.
      const secret = secretState(result.secret, device);
      world = { ...world, secret, credential: credentialOf(ctx, device, secret, world.standing) };
      decision = decide(ctx, device, world);
      if (decision.action.type === "issue" && secret.kind === "owned")
        result = await issue(ctx, device, world, decision, log);
      else if (decision.action.type === "refresh" && secret.kind === "owned")
        written = await refresh(ctx, device, world, decision.action.record);
    }
    if (result.kind === "written") written = result.secret;
  } else if (decision.action.type === "refresh" && world.secret.kind === "owned") {
    written = await refresh(ctx, device, world, decision.action.record);
  } else if (decision.action.type === "revoke") {
    const secret = world.secret.kind === "owned" ? world.secret.secret : undefined;
    // The database drops the device first (the passdb controller sees the same standing); only
    // then does the Secret go, so the server never accepts a password that no Secret holds.
    if (secret && ctx.passdb.published(deviceKey(device)) === undefined)
      await revoke(ctx, device, secret, log);
  }

  const mailServer = mailServerSynced(ctx, device, decision);
  if (mailServer?.status === "False") waiting.add(deviceKey(device));
  else waiting.delete(deviceKey(device));
  // A password just written is normally published within the batch window (and on the mail
  // server's disk soon after): report it once, as Ready (and synced), rather than each step on
  // the way. Only a database or mail server slower than this gets a status for the step.
  const fresh = freshPasswordWaitMs(ctx, decision, mailServer, written ?? ownedSecret(world));
  if (fresh > 0) return requeueAfter(Math.min(fresh, decision.requeueAfterMs ?? Infinity));
  await writeStatus(ctx, statusWriter, device, world.standing, decision, written, mailServer);
  if (decision.ready.reason === reasons.SecretConflict) return requeueWithBackoff;
  if (decision.requeueAfterMs !== undefined) return requeueAfter(decision.requeueAfterMs);
  return awaitChange;
}

function decide(ctx: OperatorContext, device: MailDevice, world: DeviceWorld): DeviceDecision {
  const mailAddress = world.standing.state === "Issuing" ? world.standing.mailAddress : undefined;
  return decideDevice({
    device,
    standing: world.standing,
    secret: world.secret,
    credential: world.credential,
    publishedHash: ctx.passdb.published(deviceKey(device))?.hash,
    overLimit: world.overLimit ? { limit: world.limit } : undefined,
    databaseFull: mailAddress !== undefined && ctx.database.leftOut.has(mailAddress),
    now: ctx.now(),
    timing: {
      minRotationIntervalMs: ctx.config.minRotationIntervalMs,
      suspensionGraceMs: ctx.config.suspensionGraceMs,
    },
  });
}

/** How long the database gets to publish a new password before the status says Publishing. */
export const publishingQuietMs = 2_000;

/**
 * MailServerSynced for a published device where passdb-sync sidecars report: True when every
 * Dovecot pod has the shard version that first carried the device's current entry.
 */
function mailServerSynced(
  ctx: OperatorContext,
  device: MailDevice,
  decision: DeviceDecision,
): { status: "True" | "False"; reason: Reason; message: string } | undefined {
  if (decision.ready.status !== "True" || !ctx.mailServer.reporting()) return undefined;
  const since = ctx.passdb.publishedSince(deviceKey(device));
  if (since && ctx.mailServer.applied(since.shard, since.version))
    return {
      status: "True",
      reason: reasons.MailServerUpToDate,
      message: "Every Dovecot pod's passdb-sync has the current password on disk.",
    };
  return {
    status: "False",
    reason: reasons.MailServerSyncing,
    message: "A Dovecot pod's passdb-sync has not reported the current password on disk yet.",
  };
}

/** Time left before a status is due for a password generated moments ago (0: due now). */
function freshPasswordWaitMs(
  ctx: OperatorContext,
  decision: DeviceDecision,
  mailServer: ReturnType<typeof mailServerSynced>,
  secret: SecretObject | undefined,
): number {
  const onTheWay = decision.ready.reason === reasons.Publishing || mailServer?.status === "False";
  if (!onTheWay || !secret) return 0;
  const generatedAt = Date.parse(readPasswordRecord(secret).generatedAt ?? "");
  if (!Number.isFinite(generatedAt)) return 0;
  // generatedAt has whole seconds: count from the end of its second.
  return Math.max(0, generatedAt + 1000 + publishingQuietMs - ctx.now().getTime());
}

function withMailServer(
  conditions: Condition[],
  mailServer: ReturnType<typeof mailServerSynced>,
  generation: number | undefined,
  now: Date,
): Condition[] {
  if (!mailServer) return conditions.filter((c) => c.type !== MailServerSynced);
  return setCondition(conditions, { type: MailServerSynced, ...mailServer }, generation, now);
}

function ownedSecret(world: DeviceWorld): SecretObject | undefined {
  return world.secret.kind === "owned" ? world.secret.secret : undefined;
}

/** The credential Secret devicepass wants for `record`: the address's settings, sealed. */
function desiredFor(
  ctx: OperatorContext,
  device: MailDevice,
  standing: Extract<AddressStanding, { state: "Issuing" }>,
  record: PasswordRecord,
): SecretObject {
  return desiredSecret({
    device,
    secretName: secretNameOf(device),
    mailAddress: standing.mailAddress,
    settings: inheritedClientSettings(
      ctx.config.defaultClientSettings,
      standing.domain?.spec.clientSettings,
      standing.address.spec.clientSettings,
    ),
    record,
    seal: ctx.seal,
  });
}

/** A write of a credential Secret, or the Secret of that name that was there already (not in our cache). */
type WriteResult = { kind: "written"; secret: SecretObject } | { kind: "exists"; secret: SecretObject };

/** Writes `desired` over the Secret we read, or creates it; a create that finds one returns it instead. */
async function writeSecret(
  ctx: OperatorContext,
  device: MailDevice,
  current: SecretObject | undefined,
  desired: SecretObject,
): Promise<WriteResult> {
  const ns = device.metadata.namespace!;
  let result: SecretObject;
  if (!current) {
    try {
      // No GET first: almost always the name is free. A 409 tells us it is not.
      result = await ctx.client.create<SecretObject>(inNamespace(resources.secrets, ns), desired);
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      const existing = await ctx.client.get<SecretObject>(
        named(resources.secrets, ns, desired.metadata.name),
      );
      return { kind: "exists", secret: existing };
    }
  } else {
    // The resourceVersion makes the apply fail if the Secret changed since we read it.
    desired.metadata.resourceVersion = current.metadata.resourceVersion;
    result = await ctx.client.apply<SecretObject>(
      named(resources.secrets, ns, current.metadata.name),
      desired,
      fieldManager,
    );
  }
  ctx.cache.secrets.assumeWritten(current?.metadata.resourceVersion, result);
  return { kind: "written", secret: result };
}

async function issue(
  ctx: OperatorContext,
  device: MailDevice,
  world: DeviceWorld,
  decision: DeviceDecision,
  log: ReconcileContext["log"],
): Promise<WriteResult> {
  const action = decision.action as Extract<DeviceDecision["action"], { type: "issue" }>;
  const standing = world.standing as Extract<AddressStanding, { state: "Issuing" }>;
  const current = ownedSecret(world);
  const valid = world.credential?.kind === "valid" ? world.credential.record : undefined;
  const password = generatePassword(
    standing.domain?.spec.devicePolicy?.passwordLength ?? ctx.config.passwordLength,
  );
  const first = action.reason === reasons.Issued;
  const record: PasswordRecord = {
    password,
    hash: await hashPassword(password, ctx.config.argon2),
    digest: passwordDigest(password),
    generatedAt: iso(ctx.now()),
    rotationCount: first ? 0 : (valid?.rotationCount ?? device.status?.rotationCount ?? 0) + 1,
    // Every rotate value seen now counts as handled by this password: one password per value.
    // Only a sealed record or our own status says what was handled before.
    rotatedFor:
      device.metadata.annotations?.[rotateAnnotation] ?? valid?.rotatedFor ?? device.status?.lastRotateValue,
    addressRotatedFor:
      standing.address.metadata.annotations?.[rotateAnnotation] ??
      valid?.addressRotatedFor ??
      device.status?.lastAddressRotateValue,
  };
  const result = await writeSecret(ctx, device, current, desiredFor(ctx, device, standing, record));
  if (result.kind === "exists") return result;
  ctx.metrics.credential(first ? "issued" : "rotated");
  ctx.events.record(device, action.warning ? "Warning" : "Normal", action.reason, action.message);
  log.info(
    { reason: action.reason, secret: result.secret.metadata.name, rotationCount: record.rotationCount },
    "issued a password",
  );
  return result;
}

/** Rewrites the Secret's other fields (settings, labels, seal) around the same password, if they differ. */
async function refresh(
  ctx: OperatorContext,
  device: MailDevice,
  world: DeviceWorld,
  record: PasswordRecord,
): Promise<SecretObject | undefined> {
  const standing = world.standing as Extract<AddressStanding, { state: "Issuing" }>;
  const current = ownedSecret(world)!;
  const desired = desiredFor(ctx, device, standing, record);
  if (secretMatches(current, desired)) return current;
  const result = await writeSecret(ctx, device, current, desired);
  return result.kind === "written" ? result.secret : undefined;
}

function revoke(
  ctx: OperatorContext,
  device: MailDevice,
  secret: SecretObject,
  log: ReconcileContext["log"],
): Promise<void> {
  return deleteDeviceSecret(ctx, device, secret, log, {
    event: `The password was revoked and Secret ${secret.metadata.name} deleted.`,
    log: "revoked credentials",
  });
}

async function writeStatus(
  ctx: OperatorContext,
  writer: StatusWriter<MailDevice>,
  device: MailDevice,
  standing: AddressStanding,
  decision: DeviceDecision,
  written: SecretObject | undefined,
  mailServer: ReturnType<typeof mailServerSynced>,
): Promise<void> {
  // What status reports of the password comes from a Secret we just wrote or a sealed record.
  const record: Partial<PasswordRecord> | undefined = written
    ? readPasswordRecord(written)
    : decision.action.type === "refresh"
      ? decision.action.record
      : undefined;
  let ready = decision.ready;
  if (decision.action.type === "issue" && written)
    ready = {
      status: "False",
      reason: reasons.Publishing,
      // The same sentence decideDevice gives once the Secret is seen: no second status write for it.
      message: `The password in Secret ${secretNameOf(device)} is waiting for the password database.`,
    };
  const previous = device.status ?? {};
  const suspendedAt = decision.suspendedAt;
  if (suspendedAt && !previous.suspendedAt)
    ctx.events.record(
      device,
      "Normal",
      reasons.Suspended,
      `The mail server no longer accepts the password (${ready.reason}); Secret ${secretNameOf(device)} is kept until ${iso(new Date(Date.parse(suspendedAt) + ctx.config.suspensionGraceMs))} in case the device is admitted again.`,
    );
  if (!suspendedAt && previous.suspendedAt && decision.action.type === "refresh")
    ctx.events.record(
      device,
      "Normal",
      reasons.Resumed,
      "The device is admitted again; its password is published again.",
    );
  const status: MailDeviceStatus = {
    observedGeneration: device.metadata.generation,
    conditions: withMailServer(
      setCondition(previous.conditions, { type: Ready, ...ready }, device.metadata.generation, ctx.now()),
      mailServer && ready.status === "True" ? mailServer : undefined,
      device.metadata.generation,
      ctx.now(),
    ),
    address: standing.state === "Issuing" ? standing.mailAddress : undefined,
    secretName: record || suspendedAt ? secretNameOf(device) : undefined,
    passwordGeneratedAt: record?.generatedAt ?? previous.passwordGeneratedAt,
    rotationCount: record?.rotationCount ?? previous.rotationCount,
    lastRotateValue: record?.rotatedFor ?? previous.lastRotateValue,
    lastAddressRotateValue: record?.addressRotatedFor ?? previous.lastAddressRotateValue,
    suspendedAt,
  };
  await applyStatus(writer, device, status);
}

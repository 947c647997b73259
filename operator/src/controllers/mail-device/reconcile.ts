// The MailDevice controller: issues, rotates and revokes a device's password (gather → decide → act)
// and reports it in status and events. The password database itself is the passdb controller's.
import { isDeepStrictEqual } from "node:util";
import { reasons } from "../../api/conditions.ts";
import { apiVersion, finalizers, kinds, labels, rotateAnnotation } from "../../api/names.ts";
import type { MailDevice, MailDeviceStatus } from "../../api/schemas.ts";
import { controllerNames, type OperatorContext } from "../../context.ts";
import { generatePassword, hashPassword, passwordDigest } from "../../credentials/password.ts";
import { isNotFound } from "../../kube/errors.ts";
import { named, resources } from "../../kube/resources.ts";
import { setCondition } from "../../policy/conditions.ts";
import {
  decideDevice,
  secretState,
  type CredentialAction,
  type DeviceDecision,
} from "../../policy/device.ts";
import {
  desiredSecret,
  labelIfValid,
  readPasswordRecord,
  secretMatches,
  type PasswordRecord,
  type SecretObject,
} from "../../policy/secret.ts";
import { awaitChange, requeueAfter, type Action, type ReconcileContext } from "../../runtime/controller.ts";
import { cachedSecret, gatherStanding, secretNameOf } from "../gather.ts";
import { inheritedClientSettings } from "../../policy/domain.ts";
import type { AddressStanding } from "../../policy/address-claims.ts";

const fieldManager = controllerNames.device;
const secretConflictRecheckMs = 10_000;

export function reconcileMailDevice(ctx: OperatorContext) {
  return async (key: string, { log }: ReconcileContext): Promise<Action> => {
    let device = ctx.cache.devices.get(key);
    if (!device) return awaitChange; // gone: its finalizer already revoked everything
    const deleting = device.metadata.deletionTimestamp !== undefined;
    const hasFinalizer = device.metadata.finalizers?.includes(finalizers.device) ?? false;
    if (deleting && !hasFinalizer) return awaitChange;
    if (!deleting) device = await ensureMetadata(ctx, device);

    const standing = gatherStanding(ctx, device);
    let secret = cachedSecret(ctx.cache, device);
    if (!secret && !deleting && standing.state === "Issuing") secret = await getSecret(ctx, device);
    const input = {
      device,
      standing,
      secret: secretState(secret, device),
      publishedHash: ctx.passdb.published(key)?.hash,
      digest: passwordDigest,
    };
    const decision = decideDevice(input);
    const written = await act(ctx, device, standing, secret, decision.action, log);

    if (deleting) {
      if (
        ctx.passdb.published(key) !== undefined ||
        (written?.kind !== "deleted" && input.secret.kind === "owned")
      ) {
        return awaitChange; // the database change or the Secret's deletion brings us back
      }
      await removeFinalizer(ctx, device);
      return awaitChange;
    }
    await writeStatus(ctx, device, standing, decision, written?.kind === "secret" ? written.secret : secret);
    // Someone else's Secret is outside our label-filtered cache: look again now and then.
    if (decision.ready.reason === reasons.SecretConflict) return requeueAfter(secretConflictRecheckMs);
    return awaitChange;
  };
}

/** Our finalizer, and the address label that `kubectl delete maildevices -l …` selects on. */
async function ensureMetadata(ctx: OperatorContext, device: MailDevice): Promise<MailDevice> {
  const wantLabels = labelIfValid(labels.address, device.spec.address);
  const hasFinalizer = device.metadata.finalizers?.includes(finalizers.device) ?? false;
  const hasLabels = Object.entries(wantLabels).every(([k, v]) => device.metadata.labels?.[k] === v);
  if (hasFinalizer && hasLabels) return device;
  const patched = await ctx.client.mergePatch<MailDevice>(
    named(resources.mailDevices, device.metadata.namespace, device.metadata.name),
    {
      metadata: {
        resourceVersion: device.metadata.resourceVersion, // a precondition: never drop another's finalizer
        finalizers: hasFinalizer ? undefined : [...(device.metadata.finalizers ?? []), finalizers.device],
        labels: hasLabels ? undefined : wantLabels,
      },
    },
    fieldManager,
  );
  return { ...device, metadata: { ...device.metadata, ...patched.metadata } };
}

async function removeFinalizer(ctx: OperatorContext, device: MailDevice): Promise<void> {
  try {
    await ctx.client.mergePatch(
      named(resources.mailDevices, device.metadata.namespace, device.metadata.name),
      {
        metadata: {
          resourceVersion: device.metadata.resourceVersion,
          finalizers: (device.metadata.finalizers ?? []).filter((f) => f !== finalizers.device),
        },
      },
      fieldManager,
    );
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/** A Secret that our label-filtered cache cannot see: someone else's, or ours with labels removed. */
async function getSecret(ctx: OperatorContext, device: MailDevice): Promise<SecretObject | undefined> {
  try {
    return await ctx.client.get<SecretObject>(
      named(resources.secrets, device.metadata.namespace, secretNameOf(device)),
    );
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

type Written = { kind: "secret"; secret: SecretObject } | { kind: "deleted" } | undefined;

async function act(
  ctx: OperatorContext,
  device: MailDevice,
  standing: AddressStanding,
  secret: SecretObject | undefined,
  action: CredentialAction,
  log: ReconcileContext["log"],
): Promise<Written> {
  const ns = device.metadata.namespace;
  switch (action.type) {
    case "none":
      return undefined;
    case "revoke": {
      // The database drops the device first (the passdb controller sees the same standing); only
      // then does the Secret go, so the server never accepts a password that no Secret holds.
      if (ctx.passdb.published(`${ns}/${device.metadata.name}`) !== undefined || !secret) return undefined;
      try {
        await ctx.client.delete(named(resources.secrets, ns, secret.metadata.name), {
          uid: secret.metadata.uid!,
        });
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      ctx.metrics.credential("revoked");
      ctx.events.record(
        device,
        "Normal",
        reasons.Revoked,
        `The password was revoked and Secret ${secret.metadata.name} deleted.`,
      );
      log.info({ secret: secret.metadata.name }, "revoked credentials");
      return { kind: "deleted" };
    }
    case "issue":
    case "refresh": {
      if (standing.state !== "Issuing") return undefined;
      const settings = inheritedClientSettings(
        ctx.config.defaultClientSettings,
        standing.domain?.spec.clientSettings,
        standing.address.spec.clientSettings,
      );
      const previous = secret ? readPasswordRecord(secret) : {};
      let record: PasswordRecord;
      if (action.type === "issue") {
        const password = generatePassword(
          standing.domain?.spec.devicePolicy?.passwordLength ?? ctx.config.passwordLength,
        );
        const first = action.reason === reasons.Issued;
        record = {
          password,
          hash: await hashPassword(password, ctx.config.argon2),
          digest: passwordDigest(password),
          generatedAt: ctx
            .now()
            .toISOString()
            .replace(/\.\d{3}Z$/, "Z"),
          rotationCount: first ? 0 : (previous.rotationCount ?? device.status?.rotationCount ?? 0) + 1,
          // Every rotate value seen now counts as handled by this password: one password per value.
          rotatedFor: device.metadata.annotations?.[rotateAnnotation] ?? previous.rotatedFor,
          addressRotatedFor:
            standing.address.metadata.annotations?.[rotateAnnotation] ?? previous.addressRotatedFor,
        };
      } else {
        record = previous as PasswordRecord;
      }
      const desired = desiredSecret({
        device,
        secretName: secretNameOf(device),
        mailAddress: standing.mailAddress,
        settings,
        record,
      });
      if (action.type === "refresh" && secret && secretMatches(secret, desired)) return undefined;
      let result: SecretObject;
      if (!secret) {
        result = await ctx.client.create<SecretObject>({ ...resources.secrets, namespace: ns }, desired);
      } else {
        // The resourceVersion makes the apply fail if the Secret changed since we read it.
        desired.metadata.resourceVersion = secret.metadata.resourceVersion;
        result = await ctx.client.apply<SecretObject>(
          named(resources.secrets, ns, secret.metadata.name),
          desired,
          fieldManager,
        );
      }
      ctx.cache.secrets.assumeWritten(secret?.metadata.resourceVersion, result);
      ctx.enqueue.passdb();
      if (action.type === "issue") {
        ctx.metrics.credential(action.reason === reasons.Issued ? "issued" : "rotated");
        ctx.events.record(device, "Normal", action.reason, action.message);
        log.info(
          { reason: action.reason, secret: result.metadata.name, rotationCount: record.rotationCount },
          "issued a password",
        );
      }
      return { kind: "secret", secret: result };
    }
  }
}

async function writeStatus(
  ctx: OperatorContext,
  device: MailDevice,
  standing: AddressStanding,
  decision: DeviceDecision,
  secret: SecretObject | undefined,
): Promise<void> {
  const record =
    secret && decision.ready.reason !== reasons.SecretConflict ? readPasswordRecord(secret) : undefined;
  let ready = decision.ready;
  if (decision.action.type === "issue")
    ready = {
      status: "False",
      reason: reasons.Publishing,
      // The same sentence decideDevice gives once the Secret is seen: no second status write for it.
      message: `The password in Secret ${secretNameOf(device)} is waiting for the password database.`,
    };
  const previous = device.status ?? {};
  const status: MailDeviceStatus = {
    observedGeneration: device.metadata.generation,
    conditions: setCondition(
      previous.conditions,
      { type: "Ready", ...ready },
      device.metadata.generation,
      ctx.now(),
    ),
    address: standing.state === "Issuing" ? standing.mailAddress : undefined,
    secretName: record ? secretNameOf(device) : undefined,
    passwordGeneratedAt: record?.generatedAt ?? previous.passwordGeneratedAt,
    rotationCount: record?.rotationCount ?? previous.rotationCount,
    lastRotateValue: record?.rotatedFor ?? previous.lastRotateValue,
    lastAddressRotateValue: record?.addressRotatedFor ?? previous.lastAddressRotateValue,
  };
  const clean = JSON.parse(JSON.stringify(status)) as MailDeviceStatus;
  if (isDeepStrictEqual(clean, JSON.parse(JSON.stringify(previous)))) return;
  const previousReason = previous.conditions?.find((c) => c.type === "Ready")?.reason;
  if (ready.status === "False" && ready.reason !== previousReason && ready.reason !== reasons.Publishing) {
    ctx.events.record(device, "Warning", ready.reason, ready.message);
  }
  const written = await ctx.client.apply<unknown>(
    named(resources.mailDevices, device.metadata.namespace, device.metadata.name, "status"),
    {
      apiVersion,
      kind: kinds.mailDevice.kind,
      metadata: { name: device.metadata.name, namespace: device.metadata.namespace },
      status: clean,
    },
    fieldManager,
  );
  // Status-only echoes start no reconcile: the next one must see this status, not the one before.
  ctx.cache.devices.assumeWritten(device.metadata.resourceVersion, written);
}

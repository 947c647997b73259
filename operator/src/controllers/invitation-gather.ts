// What an invitation device's state is read from, for every controller that asks: the records'
// index and seal key, the triggers that name a device when its link Secret or a record changes,
// the device's invitation gathered from the caches, and its database entry (the passdb
// controller's question). The MailDevice controller acts on it (mail-device/invitation.ts).
import { invitationNames, invitationSecretName } from "../api/names.ts";
import type { MailDevice } from "../api/schemas.ts";
import type { OperatorContext } from "../context.ts";
import type { SealKey } from "../credentials/seal.ts";
import type { ConfigMapObject } from "../invitations/record.ts";
import { recordNameForHash } from "../invitations/token.ts";
import type { SecretObject } from "../kube/objects.ts";
import type { PassdbEntry } from "../passdb/format.ts";
import { secretState, type SecretState } from "../policy/device.ts";
import { invitationEntry, viewRecord, type InvitationWorld, type RecordView } from "../policy/invitation.ts";
import { checkLink, type LinkCheck } from "../policy/invitation-link.ts";
import type { AddressStanding } from "../policy/ownership.ts";

/** The index of invitation records by the uid of the MailDevice they invite to. */
export const recordsByDevice = "deviceUid";

const recordKeys = new WeakMap<SealKey, Buffer>();

/** The HMAC key of invitation records, derived from the operator's seal key (the portal never has it). */
export function recordSealKey(seal: SealKey): Buffer {
  let key = recordKeys.get(seal);
  if (!key)
    recordKeys.set(
      seal,
      (key = Buffer.from(seal.seal("devicepass-invitation-record-key-v1", []), "base64url")),
    );
  return key;
}

export function addInvitationIndexes(ctx: Pick<OperatorContext, "cache">): void {
  ctx.cache.invitationRecords.addIndex(recordsByDevice, (cm) => {
    const uid = cm.metadata.labels?.[invitationNames.deviceUidLabel];
    return uid ? [uid] : [];
  });
}

/** The MailDevice a record says it invites to (unverified: only to know whom to look at). */
export function recordDevice(configMap: ConfigMapObject): string | undefined {
  try {
    const invitation = JSON.parse(configMap.data?.invitation ?? "") as {
      device?: { namespace?: unknown; name?: unknown };
    };
    const { namespace, name } = invitation.device ?? {};
    return typeof namespace === "string" && typeof name === "string" ? `${namespace}/${name}` : undefined;
  } catch {
    return undefined;
  }
}

/** A record's state as written, or undefined for a deleted one. */
export const stateOf = (configMap: ConfigMapObject | undefined) => configMap?.data?.state;

/**
 * Calls `handler` with a device (namespace, name) whenever something its invitation hangs on
 * changes: its link Secret, or the state of a record that invites to it. Echoes of the setup
 * ciphertext's removal (no change of state) bring nothing.
 */
export function onInvitationChange(
  ctx: Pick<OperatorContext, "cache">,
  handler: (namespace: string, name: string) => void,
): void {
  ctx.cache.invitationLinks.onChange((secret) => {
    const owner = secret.metadata.ownerReferences?.find((ref) => ref.controller);
    if (owner && secret.metadata.namespace) handler(secret.metadata.namespace, owner.name);
  });
  ctx.cache.invitationRecords.onChange((configMap, old, deleted) => {
    if (!deleted && old && stateOf(old) === stateOf(configMap)) return;
    const device = recordDevice(configMap);
    if (!device) return;
    const slash = device.indexOf("/");
    handler(device.slice(0, slash), device.slice(slash + 1));
  });
}

const linkChecks = new WeakMap<SecretObject, { device: string; check: LinkCheck }>();
const recordViews = new WeakMap<ConfigMapObject, { device: string; view: RecordView }>();

/** The device's invitation, from the caches (read back as input, each check memoized per object). */
export function gatherInvitation(
  ctx: Pick<OperatorContext, "cache" | "seal" | "config">,
  device: MailDevice,
  linkOverride?: SecretObject,
): InvitationWorld {
  const id = `${device.metadata.uid}/${device.metadata.namespace}/${device.metadata.name}`;
  const secret =
    linkOverride ??
    ctx.cache.invitationLinks.get(
      `${device.metadata.namespace}/${invitationSecretName(device.metadata.name)}`,
    );
  const link: SecretState = secretState(secret, device);
  let check: LinkCheck | undefined;
  if (link.kind === "owned") {
    const memo = linkChecks.get(link.secret);
    check = memo?.device === id ? memo.check : checkLink(link.secret, device, ctx.seal);
    linkChecks.set(link.secret, { device: id, check });
  }
  let record: RecordView = { kind: "missing" };
  if (check?.kind === "valid") {
    const configMap = ctx.cache.invitationRecords.get(
      `${ctx.config.operatorNamespace}/${recordNameForHash(check.record.tokenHash)}`,
    );
    if (configMap) {
      const memo = recordViews.get(configMap);
      record = memo?.device === id ? memo.view : viewRecord(configMap, device, recordSealKey(ctx.seal));
      recordViews.set(configMap, { device: id, view: record });
    }
  }
  const liveRecords = ctx.cache.invitationRecords
    .byIndex(recordsByDevice, device.metadata.uid)
    .filter((cm) => stateOf(cm) !== "revoked")
    .map((cm) => cm.metadata.name)
    .sort();
  return { link, check, record, liveRecords };
}

/** The database entry of an invitation device (the passdb controller's question). */
export function invitationDeviceEntry(
  ctx: OperatorContext,
  device: MailDevice,
  standing: AddressStanding,
  overLimit: boolean,
): PassdbEntry | undefined {
  return invitationEntry({
    device,
    standing,
    overLimit,
    world: gatherInvitation(ctx, device),
    argon2: ctx.config.argon2,
  });
}

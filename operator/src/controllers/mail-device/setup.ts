// The MailDevice controller's triggers (controller-runtime's SetupWithManager): which changes of
// which objects bring which devices back, each with its own echo filter.
import { controllerNames, type OperatorContext } from "../../context.ts";
import { normalizeAddress } from "../../policy/ownership.ts";
import { Controller, type ControllerSetup } from "../../runtime/controller.ts";
import { objectKey } from "../../runtime/informer.ts";
import { labelsChanged, specChanged, specOrMetadataChanged } from "../../runtime/triggers.ts";
import { addressKeyOf, claimsOf, indexNames } from "../gather.ts";
import { deviceErrorPolicy, registerInvitationTriggers } from "./invitation.ts";
import { reconcileMailDevice, type WaitingForMailServer } from "./reconcile.ts";

export function setupMailDeviceController(ctx: OperatorContext): ControllerSetup {
  const { cache } = ctx;
  const waiting: WaitingForMailServer = new Set();
  const controller = new Controller({
    name: controllerNames.device,
    reconcile: reconcileMailDevice(ctx, waiting),
    log: ctx.log,
    workers: ctx.config.workers,
    metrics: ctx.metrics,
    errorPolicy: deviceErrorPolicy,
  });
  const devicesOfAddressObject = (key: string) => {
    for (const d of cache.devices.byIndex(indexNames.addressObject, key)) controller.enqueue(objectKey(d));
  };
  /** A change of one claim can change who owns the mail address: every claimant's devices. */
  const devicesOfMailAddress = (mailAddress: string) => {
    for (const a of claimsOf(cache, mailAddress)) devicesOfAddressObject(objectKey(a));
  };

  cache.devices.onChange((device, old, deleted) => {
    if (deleted || specOrMetadataChanged(device, old)) controller.enqueue(objectKey(device));
    // A device arriving or leaving moves its siblings' places under the address's device limit.
    if (deleted || !old || device.metadata.deletionTimestamp !== old.metadata.deletionTimestamp)
      devicesOfAddressObject(addressKeyOf(device));
  });
  cache.secrets.onChange((secret) => {
    const owner = secret.metadata.ownerReferences?.find((ref) => ref.controller);
    if (owner) controller.enqueue(`${secret.metadata.namespace}/${owner.name}`);
  });
  cache.addresses.onChange((address, old, deleted) => {
    if (!deleted && !specOrMetadataChanged(address, old)) return;
    devicesOfAddressObject(objectKey(address)); // itself, even when it is gone from the index
    devicesOfMailAddress(normalizeAddress(address.spec.address));
  });
  // A domain's rules, or a namespace's labels, decide which addresses may issue credentials.
  cache.domains.onChange((domain, old, deleted) => {
    if (!deleted && !specChanged(domain, old)) return; // our own status write
    for (const a of cache.addresses.byIndex(indexNames.domain, domain.metadata.name))
      devicesOfMailAddress(normalizeAddress(a.spec.address));
  });
  cache.namespaces.onChange((namespace, old, deleted) => {
    if (!deleted && !labelsChanged(namespace, old)) return;
    for (const a of cache.addresses.byIndex(indexNames.namespace, namespace.metadata.name))
      devicesOfMailAddress(normalizeAddress(a.spec.address));
  });
  registerInvitationTriggers(ctx, controller);
  ctx.ownership.onChange((mailAddress) => devicesOfMailAddress(mailAddress));
  ctx.database.onLeftOutChange((mailAddress) => devicesOfMailAddress(mailAddress));
  // A database change is what a Publishing device waits for: those devices go first.
  ctx.passdb.onChange((changes) => {
    for (const { entry } of changes) controller.enqueue(entry.device, "high");
  });
  // A sidecar reporting a newer shard on disk: the devices waiting for it look again.
  ctx.mailServer.onChange(() => {
    for (const key of waiting) controller.enqueue(key);
  });
  return { controller, keys: () => cache.devices.keys() };
}

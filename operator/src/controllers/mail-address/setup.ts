// The MailAddress controller's triggers: its own changes, its devices (counts, readiness and the
// revocations its deletion waits for, coalesced), the rules that decide its standing, and the
// outcome of cutting its sessions.
import { controllerNames, type OperatorContext } from "../../context.ts";
import { normalizeAddress } from "../../policy/ownership.ts";
import { Controller, type ControllerSetup } from "../../runtime/controller.ts";
import { objectKey } from "../../runtime/informer.ts";
import { labelsChanged, specChanged, specOrMetadataChanged } from "../../runtime/triggers.ts";
import { addressKeyOf, claimsOf, indexNames } from "../gather.ts";
import { reconcileMailAddress } from "./reconcile.ts";

/** Device changes arrive in bursts (an apply of many devices): one address pass per this window. */
const deviceCoalescingMs = 500;

export function setupMailAddressController(ctx: OperatorContext): ControllerSetup {
  const { cache } = ctx;
  const controller = new Controller({
    name: controllerNames.address,
    reconcile: reconcileMailAddress(ctx),
    log: ctx.log,
    workers: 2,
    metrics: ctx.metrics,
  });
  const claimants = (mailAddress: string) => {
    for (const a of claimsOf(cache, mailAddress)) controller.enqueue(objectKey(a));
  };
  const ofDevice = (namespace: string | undefined, name: string) => {
    const device = cache.devices.get(`${namespace}/${name}`);
    if (device) controller.enqueueAfter(addressKeyOf(device), deviceCoalescingMs);
  };

  cache.addresses.onChange((address, old, deleted) => {
    if (deleted || specOrMetadataChanged(address, old)) claimants(normalizeAddress(address.spec.address));
    if (!deleted && specOrMetadataChanged(address, old)) controller.enqueue(objectKey(address));
  });
  cache.devices.onChange((device) => controller.enqueueAfter(addressKeyOf(device), deviceCoalescingMs));
  cache.secrets.onChange((secret) => {
    const owner = secret.metadata.ownerReferences?.find((ref) => ref.controller);
    if (owner) ofDevice(secret.metadata.namespace, owner.name);
  });
  ctx.passdb.onChange((changes) => {
    for (const { entry } of changes) {
      const [namespace, name] = entry.device.split("/");
      ofDevice(namespace, name!);
    }
  });
  cache.domains.onChange((domain, old, deleted) => {
    if (!deleted && !specChanged(domain, old)) return;
    for (const a of cache.addresses.byIndex(indexNames.domain, domain.metadata.name))
      controller.enqueue(objectKey(a));
  });
  cache.namespaces.onChange((namespace, old, deleted) => {
    if (!deleted && !labelsChanged(namespace, old)) return;
    for (const a of cache.addresses.byIndex(indexNames.namespace, namespace.metadata.name))
      claimants(normalizeAddress(a.spec.address));
  });
  ctx.ownership.onChange((mailAddress) => claimants(mailAddress));
  ctx.sessions?.onResult((mailAddress) => claimants(mailAddress));
  return { controller, keys: () => cache.addresses.keys() };
}

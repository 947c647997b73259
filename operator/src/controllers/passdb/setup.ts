// The passdb controller's triggers: every change that can change an address's file enqueues that
// address's shard, at most one write per shard per batch window (a quiet shard is written at once,
// a busy one collects a window's changes into one write), our own writes' echoes excepted; a hand
// edit or deletion of a shard brings it back to be rewritten.
import { controllerNames, type OperatorContext } from "../../context.ts";
import { shardName } from "../../passdb/format.ts";
import { normalizeAddress } from "../../policy/ownership.ts";
import { Controller, type ControllerSetup } from "../../runtime/controller.ts";
import { labelsChanged, specChanged, specOrMetadataChanged } from "../../runtime/triggers.ts";
import { addressKeyOf, indexNames } from "../gather.ts";
import { onInvitationChange } from "../invitation-gather.ts";
import { reconcilePassdbShard, type ShardWrites } from "./reconcile.ts";
import { ShardRenderings } from "./renderings.ts";

export function setupPassdbController(ctx: OperatorContext): ControllerSetup {
  const { cache, config } = ctx;
  const writes: ShardWrites = { last: new Map(), at: new Map() };
  const renderings = new ShardRenderings();
  const controller = new Controller({
    name: controllerNames.passdb,
    reconcile: reconcilePassdbShard(ctx, writes, renderings),
    log: ctx.log,
    // Shards are independent: several written at once.
    workers: 4,
    metrics: ctx.metrics,
  });
  const shardOfAddress = (mailAddress: string) => {
    const index = ctx.database.shardOf(mailAddress);
    renderings.markAddress(index, mailAddress);
    const shard = shardName(config.passdbSecretPrefix, index);
    const since = performance.now() - (writes.at.get(shard) ?? -Infinity);
    controller.enqueueAfter(shard, Math.max(0, config.passdbBatchWindowMs - since));
  };
  const shardOfDevice = (namespace: string | undefined, name: string) => {
    const published = ctx.passdb.published(`${namespace}/${name}`);
    if (published) shardOfAddress(published.address);
    const device = cache.devices.get(`${namespace}/${name}`);
    const address = device && cache.addresses.get(addressKeyOf(device));
    if (address) shardOfAddress(normalizeAddress(address.spec.address));
  };

  // A device's entry follows its spec and its deletion (and its Secret, below); its finalizer,
  // labels and annotations never change it, so their patches start no pass.
  cache.devices.onChange((device, old, deleted) => {
    if (deleted || specChanged(device, old)) shardOfDevice(device.metadata.namespace, device.metadata.name);
  });
  cache.secrets.onChange((secret) => {
    const owner = secret.metadata.ownerReferences?.find((ref) => ref.controller);
    if (owner) shardOfDevice(secret.metadata.namespace, owner.name);
  });
  cache.addresses.onChange((address, old, deleted) => {
    if (deleted || specOrMetadataChanged(address, old))
      shardOfAddress(normalizeAddress(address.spec.address));
  });
  cache.domains.onChange((domain, old, deleted) => {
    if (!deleted && !specChanged(domain, old)) return;
    for (const a of cache.addresses.byIndex(indexNames.domain, domain.metadata.name))
      shardOfAddress(normalizeAddress(a.spec.address));
  });
  cache.namespaces.onChange((namespace, old, deleted) => {
    if (!deleted && !labelsChanged(namespace, old)) return;
    for (const a of cache.addresses.byIndex(indexNames.namespace, namespace.metadata.name))
      shardOfAddress(normalizeAddress(a.spec.address));
  });
  // A redeemed or revoked invitation, or an edited link Secret, changes what the device may have.
  onInvitationChange(ctx, shardOfDevice);
  ctx.ownership.onChange((mailAddress) => shardOfAddress(mailAddress));
  cache.passdbShards.onChange((shard, _old, deleted) => {
    if (!deleted && writes.last.get(shard.metadata.name) === shard.metadata.resourceVersion) return; // our own write
    const index = ctx.passdb.shardIndex(shard.metadata.name);
    if (index !== undefined) renderings.markShard(index);
    controller.enqueue(shard.metadata.name);
  });
  // The first pass and the periodic resync render every address again: the safety net.
  const keys = function* () {
    for (let i = 0; i < config.passdbShards; i++) {
      renderings.markShard(i);
      yield shardName(config.passdbSecretPrefix, i);
    }
    for (const shard of cache.passdbShards.list())
      if (ctx.passdb.shardIndex(shard.metadata.name) === undefined) yield shard.metadata.name;
  };
  return { controller, keys };
}

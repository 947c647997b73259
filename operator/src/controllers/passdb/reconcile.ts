// The password database controller: one key per shard Secret. A pass renders the files of the
// addresses placed in that shard (only devices whose Secrets hold a sealed, intact record),
// their ownership records, within the shard's size budget, and writes the shard only when its
// bytes change. Shards beyond the configured count are deleted.
import { isDeepStrictEqual } from "node:util";
import { components, labels, managedByValue } from "../../api/names.ts";
import type { OperatorContext } from "../../context.ts";
import { isNotFound } from "../../kube/errors.ts";
import { encodeData, type SecretObject } from "../../kube/objects.ts";
import { inNamespace, named, resources } from "../../kube/resources.ts";
import { renderShard, shardIndexOf, type PassdbEntry, type ShardAddress } from "../../passdb/format.ts";
import { publishableEntry, secretState } from "../../policy/device.ts";
import { usesInvitation } from "../../policy/invitation.ts";
import { invitationDeviceEntry } from "../invitation-gather.ts";
import { normalizeAddress, ownershipLapsesAt } from "../../policy/ownership.ts";
import { awaitChange, requeueAfter, type Reconcile } from "../../runtime/controller.ts";
import {
  claimsOf,
  credentialOf,
  deviceLimit,
  indexNames,
  liveDevicesOf,
  resolveOwner,
  secretNameOf,
  standingOfAddress,
} from "../gather.ts";
import { objectKey } from "../../runtime/informer.ts";

/** The entries an address may have in the database now: those of its issuing claim's devices. */
export function addressEntries(ctx: OperatorContext, mailAddress: string): PassdbEntry[] {
  for (const claim of claimsOf(ctx.cache, mailAddress)) {
    const standing = standingOfAddress(ctx, claim);
    if (standing.state !== "Issuing") continue;
    const limit = deviceLimit(ctx, standing.domain);
    const entries: PassdbEntry[] = [];
    for (const device of liveDevicesOf(ctx.cache, objectKey(claim)).slice(0, limit)) {
      if (usesInvitation(device)) {
        // The hash the person's redemption wrote into the device's current, sealed record.
        const entry = invitationDeviceEntry(ctx, device, standing, false);
        if (entry) entries.push(entry);
        continue;
      }
      const secret = secretState(
        ctx.cache.secrets.get(`${device.metadata.namespace}/${secretNameOf(device)}`),
        device,
      );
      const credential = credentialOf(ctx, device, secret, standing);
      const entry = publishableEntry({ device, standing, secret, credential, overLimit: false });
      if (entry) entries.push(entry);
    }
    return entries;
  }
  return [];
}

export interface ShardWrites {
  /** The resourceVersion of our last write of each shard: its watch event is no news. */
  last: Map<string, string>;
  /** When each shard was last written (performance.now()): the next write waits a batch window. */
  at: Map<string, number>;
}

export function reconcilePassdbShard(ctx: OperatorContext, writes: ShardWrites): Reconcile {
  const { passdbNamespace: namespace, passdbSecretPrefix: prefix, passdbShards } = ctx.config;
  return async (name, { log }) => {
    const index = shardIndexOf(prefix, name);
    if (index === undefined) return awaitChange;
    const current = ctx.cache.passdbShards.get(`${namespace}/${name}`);
    if (index >= passdbShards) {
      // A shard of a larger database (passdb.shards was lowered): it must not be read any more.
      if (!current) return awaitChange;
      try {
        await ctx.client.delete(named(resources.secrets, namespace, name), {
          uid: current.metadata.uid!,
          resourceVersion: current.metadata.resourceVersion!,
        });
        log.info({ shard: name }, "deleted a shard beyond the configured count");
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      return awaitChange;
    }

    const mailAddresses = new Set<string>();
    for (const a of ctx.cache.addresses.byIndex(indexNames.shard, String(index)))
      mailAddresses.add(normalizeAddress(a.spec.address));
    for (const record of ctx.ownership.inShard(index)) mailAddresses.add(record.address);
    const addresses: ShardAddress[] = [];
    let nextLapse = Infinity;
    for (const mailAddress of mailAddresses) {
      const owner = resolveOwner(ctx, mailAddress);
      if (owner) nextLapse = Math.min(nextLapse, ownershipLapsesAt(owner, ctx.ownership.grace) ?? Infinity);
      addresses.push({ address: mailAddress, owner, entries: addressEntries(ctx, mailAddress) });
    }
    const rendered = renderShard(addresses, ctx.config.passdbShardBudgetBytes);
    ctx.database.setLeftOut(index, rendered.leftOut);
    if (rendered.leftOut.length > 0)
      log.warn(
        { shard: name, leftOut: rendered.leftOut.length, bytes: rendered.bytes },
        "a shard is full: addresses were left out",
      );
    ctx.metrics.passdbLeftOut(index, rendered.leftOut.length);

    const data = encodeData(Object.fromEntries(rendered.files));
    const requeue = Number.isFinite(nextLapse)
      ? requeueAfter(Math.max(0, nextLapse - ctx.now().getTime()) + 1000)
      : awaitChange;
    if (current && isDeepStrictEqual(current.data ?? {}, data)) return requeue;
    const secret: SecretObject = {
      apiVersion: "v1",
      kind: "Secret",
      type: "Opaque",
      metadata: {
        name,
        namespace,
        labels: {
          ...current?.metadata.labels,
          [labels.managedBy]: managedByValue,
          [labels.component]: components.passdb,
        },
        annotations: current?.metadata.annotations ?? {},
      },
      data,
    };
    const base = current?.metadata.resourceVersion;
    // A whole replacement, conditional on the version we read: keys added by hand go too.
    if (current) secret.metadata.resourceVersion = base;
    let result: SecretObject;
    try {
      result = current
        ? await ctx.client.replace<SecretObject>(named(resources.secrets, namespace, name), secret)
        : await ctx.client.create<SecretObject>(inNamespace(resources.secrets, namespace), secret);
    } catch (error) {
      ctx.metrics.passdbWriteFailed(index);
      throw error;
    }
    writes.last.set(name, result.metadata.resourceVersion!);
    writes.at.set(name, performance.now());
    // Only over the version it replaced: a hand edit seen meanwhile must not be hidden.
    ctx.cache.passdbShards.assumeWritten(base, result);
    const entries = addresses.reduce((n, a) => n + a.entries.length, 0);
    ctx.metrics.passdbWrite(1, entries, rendered.bytes);
    log.debug({ shard: name, addresses: addresses.length, entries, bytes: rendered.bytes }, "wrote a shard");
    return requeue;
  };
}

// The password database controller: one key per shard Secret. A pass renders the files of the
// addresses placed in that shard that changed since its last pass (only devices whose Secrets hold
// a sealed, intact record; renderings.ts keeps the others'), lays them out with their ownership
// records within the shard's size budget, and writes the shard only when its bytes change. Shards
// beyond the configured count are deleted.
import { isDeepStrictEqual } from "node:util";
import { components, labels, managedByValue } from "../../api/names.ts";
import type { OperatorContext } from "../../context.ts";
import { isNotFound } from "../../kube/errors.ts";
import type { SecretObject } from "../../kube/objects.ts";
import { inNamespace, named, resources } from "../../kube/resources.ts";
import {
  layoutShard,
  ownersKey,
  renderAddress,
  shardIndexOf,
  type PassdbEntry,
} from "../../passdb/format.ts";
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
import type { ShardRenderings } from "./renderings.ts";

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

const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

export function reconcilePassdbShard(
  ctx: OperatorContext,
  writes: ShardWrites,
  renderings: ShardRenderings,
): Reconcile {
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
    const rendered = renderings.of(index);
    const again = renderings.take(index);
    for (const mailAddress of rendered.keys())
      if (!mailAddresses.has(mailAddress)) rendered.delete(mailAddress);
    const now = ctx.now().getTime();
    let nextLapse = Infinity;
    for (const mailAddress of mailAddresses) {
      const was = rendered.get(mailAddress);
      if (was && again !== "all" && !again.has(mailAddress) && was.lapsesAt > now) {
        nextLapse = Math.min(nextLapse, was.lapsesAt);
        // Once our write's echo is in, share its copy of the file rather than keep a second.
        const published = current?.data?.[was.key];
        if (published !== undefined && published === was.encoded) was.encoded = published;
        continue;
      }
      const owner = resolveOwner(ctx, mailAddress);
      const lapsesAt = (owner && ownershipLapsesAt(owner, ctx.ownership.grace)) ?? Infinity;
      nextLapse = Math.min(nextLapse, lapsesAt);
      const address = renderAddress(mailAddress, addressEntries(ctx, mailAddress), owner);
      const encoded = address.file === undefined ? undefined : base64(address.file);
      // The published shard's copy of an unchanged file: one string in memory instead of two.
      const published = current?.data?.[address.key];
      rendered.set(mailAddress, {
        ...address,
        file: undefined,
        encoded: published === encoded ? published : encoded,
        lapsesAt,
      });
    }
    const layout = layoutShard([...rendered.values()], ctx.config.passdbShardBudgetBytes);
    ctx.database.setLeftOut(index, layout.leftOut);
    if (layout.leftOut.length > 0)
      log.warn(
        { shard: name, leftOut: layout.leftOut.length, bytes: layout.bytes },
        "a shard is full: addresses were left out",
      );
    ctx.metrics.passdbLeftOut(index, layout.leftOut.length);

    const data: Record<string, string> = { [ownersKey]: base64(layout.owners) };
    for (const address of layout.included) data[address.key] = rendered.get(address.address)!.encoded!;
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
        ? // What was written is what we sent (a whole replacement), at its new version; the
          // uid stays. The body returned is not decoded (the watch brings the same object).
          {
            ...secret,
            metadata: {
              ...secret.metadata,
              uid: current.metadata.uid,
              resourceVersion: await ctx.client.replaceForVersion(
                named(resources.secrets, namespace, name),
                secret,
              ),
            },
          }
        : await ctx.client.create<SecretObject>(inNamespace(resources.secrets, namespace), secret);
    } catch (error) {
      ctx.metrics.passdbWriteFailed(index);
      throw error;
    }
    writes.last.set(name, result.metadata.resourceVersion!);
    writes.at.set(name, performance.now());
    // Only over the version it replaced: a hand edit seen meanwhile must not be hidden.
    ctx.cache.passdbShards.assumeWritten(base, result);
    const entries = layout.included.reduce((n, a) => n + a.entries, 0);
    ctx.metrics.passdbWrite(1, entries, layout.bytes);
    log.debug(
      { shard: name, addresses: layout.included.length, entries, bytes: layout.bytes },
      "wrote a shard",
    );
    return requeue;
  };
}

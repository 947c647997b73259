// The password database controller: renders every publishable device entry into the shard
// Secrets and writes only the shards that changed. One key for the whole database, so a burst
// of device changes is merged into one pass (a batch) instead of one write per device.
import { isDeepStrictEqual } from "node:util";
import { labels, managedByValue, passdbComponent } from "../../api/names.ts";
import type { OperatorContext } from "../../context.ts";
import { passwordDigest } from "../../credentials/password.ts";
import { resources, named } from "../../kube/resources.ts";
import { renderShards, shardName, type PassdbEntry } from "../../passdb/format.ts";
import { publishableEntry } from "../../policy/device.ts";
import { encodeData, type SecretObject } from "../../policy/secret.ts";
import { awaitChange, type Action, type ReconcileContext } from "../../runtime/controller.ts";
import { cachedSecret, gatherStanding } from "../gather.ts";

export const passdbKey = "passdb";

/** Every entry the database must hold now, from the caches. */
export function desiredEntries(ctx: OperatorContext): PassdbEntry[] {
  const entries: PassdbEntry[] = [];
  for (const device of ctx.cache.devices.list()) {
    const entry = publishableEntry(
      device,
      gatherStanding(ctx, device),
      cachedSecret(ctx.cache, device),
      passwordDigest,
    );
    if (entry) entries.push(entry);
  }
  return entries;
}

export function reconcilePassdb(ctx: OperatorContext) {
  const { passdbNamespace: namespace, passdbSecretPrefix: prefix, passdbShards } = ctx.config;
  return async (_key: string, { log }: ReconcileContext): Promise<Action> => {
    const entries = desiredEntries(ctx);
    const shards = renderShards(entries, passdbShards);
    const writes: Promise<SecretObject>[] = [];
    let bytes = 0;
    for (const [index, files] of shards) {
      const name = shardName(prefix, index);
      const data = encodeData(Object.fromEntries(files));
      const current = ctx.cache.passdbShards.get(`${namespace}/${name}`);
      if (current && isDeepStrictEqual(current.data ?? {}, data)) continue;
      bytes += Object.values(data).reduce((sum, v) => sum + v.length, 0);
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
            [labels.component]: passdbComponent,
          },
          annotations: current?.metadata.annotations ?? {},
        },
        data,
      };
      const base = current?.metadata.resourceVersion;
      // A whole replacement, conditional on the version we read: keys added by hand go too.
      if (current) secret.metadata.resourceVersion = base;
      const write = current
        ? ctx.client.replace<SecretObject>(named(resources.secrets, namespace, name), secret)
        : ctx.client.create<SecretObject>({ ...resources.secrets, namespace }, secret);
      writes.push(
        write.then((result) => {
          // Only over the version it replaced: a hand edit seen meanwhile must not be hidden.
          ctx.cache.passdbShards.assumeWritten(base, result);
          return result;
        }),
      );
    }
    if (writes.length === 0) return awaitChange;
    const results = await Promise.allSettled(writes);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    const written = results.length - (failed ? results.filter((r) => r.status === "rejected").length : 0);
    ctx.metrics.passdbWrite(written, entries.length, bytes);
    log.debug({ shards: written, entries: entries.length }, "wrote the password database");
    if (failed) throw failed.reason;
    return awaitChange;
  };
}

// The autoconfig controller: one key. Publishes each MailDomain's client settings (over the
// operator's defaults) into the ConfigMap devicepass-autoconfig of the operator's namespace, which
// the portal (it may not read MailDomains) watches by name to answer mail clients' autoconfiguration.
import { invitationNames } from "../../api/names.ts";
import { desiredAutoconfigConfigMap } from "../../autoconfig/data.ts";
import { controllerNames, type OperatorContext } from "../../context.ts";
import { isNotFound } from "../../kube/errors.ts";
import type { ConfigMapObject } from "../../kube/objects.ts";
import { named, resources } from "../../kube/resources.ts";
import { awaitChange, type Reconcile } from "../../runtime/controller.ts";
import { isDeepStrictEqual } from "node:util";

export const autoconfigKey = invitationNames.autoconfigConfigMap;

export function reconcileAutoconfig(ctx: OperatorContext): Reconcile {
  /** The data last applied: a resync with nothing new writes nothing. */
  let applied: Record<string, string> | undefined;
  return async (_key, { log }) => {
    const domains = ctx.cache.domains
      .list()
      .filter((d) => !d.metadata.deletionTimestamp)
      .map((d) => ({ name: d.metadata.name, clientSettings: d.spec.clientSettings }));
    const desired = desiredAutoconfigConfigMap(
      ctx.config.operatorNamespace,
      domains,
      ctx.config.defaultClientSettings,
    );
    const ref = named(resources.configMaps, ctx.config.operatorNamespace, desired.metadata.name);
    // After a restart, what an earlier process published: a start with nothing new writes nothing.
    applied ??= await ctx.client.get<ConfigMapObject>(ref).then(
      (current) => current.data ?? {},
      (error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      },
    );
    if (applied && isDeepStrictEqual(applied, desired.data ?? {})) return awaitChange;
    await ctx.client.apply(ref, desired, controllerNames.autoconfig);
    applied = desired.data;
    log.info({ domains: Object.keys(desired.data ?? {}).length }, "published the domains' client settings");
    return awaitChange;
  };
}

// The MailDomain controller: reports how many addresses of the domain sit in admitted namespaces.
import { isDeepStrictEqual } from "node:util";
import { Ready, reasons } from "../../api/conditions.ts";
import { apiVersion, kinds } from "../../api/names.ts";
import type { MailDomainStatus } from "../../api/schemas.ts";
import type { OperatorContext } from "../../context.ts";
import { named, resources } from "../../kube/resources.ts";
import { domainVerdict } from "../../policy/address-claims.ts";
import { setCondition } from "../../policy/conditions.ts";
import { awaitChange, type Action } from "../../runtime/controller.ts";
import { indexNames } from "../gather.ts";

export const domainFieldManager = "devicepass-maildomain";

export function reconcileMailDomain(ctx: OperatorContext) {
  return async (name: string): Promise<Action> => {
    const domain = ctx.cache.domains.get(name);
    if (!domain || domain.metadata.deletionTimestamp) return awaitChange;
    const addresses = ctx.cache.addresses.byIndex(indexNames.domain, name);
    const admitted = addresses.filter((a) => domainVerdict(a, ctx.rules).ok).length;
    const previous = domain.status ?? {};
    const status: MailDomainStatus = {
      observedGeneration: domain.metadata.generation,
      conditions: setCondition(
        previous.conditions,
        {
          type: Ready,
          status: "True",
          reason: reasons.DomainReady,
          message: `${admitted} of ${addresses.length} addresses of ${name} are in admitted namespaces.`,
        },
        domain.metadata.generation,
        ctx.now(),
      ),
      addresses: admitted,
    };
    if (isDeepStrictEqual(JSON.parse(JSON.stringify(status)), JSON.parse(JSON.stringify(previous))))
      return awaitChange;
    await ctx.client.apply(
      named(resources.mailDomains, undefined, name, "status"),
      { apiVersion, kind: kinds.mailDomain.kind, metadata: { name }, status },
      domainFieldManager,
    );
    return awaitChange;
  };
}

// The MailDomain controller: reports how many addresses of the domain sit in admitted namespaces.
import { Ready, reasons } from "../../api/conditions.ts";
import type { MailDomain, MailDomainStatus } from "../../api/schemas.ts";
import { controllerNames, type OperatorContext } from "../../context.ts";
import { resources } from "../../kube/resources.ts";
import { setCondition } from "../../policy/conditions.ts";
import { domainVerdict } from "../../policy/ownership.ts";
import { awaitChange, type Reconcile } from "../../runtime/controller.ts";
import { applyStatus, type StatusWriter } from "../../runtime/status.ts";
import { indexNames } from "../gather.ts";

export function reconcileMailDomain(ctx: OperatorContext): Reconcile {
  const writer: StatusWriter<MailDomain> = {
    client: ctx.client,
    resource: resources.mailDomains,
    fieldManager: controllerNames.domain,
    events: ctx.events,
    cache: ctx.cache.domains,
    fields: ["observedGeneration", "conditions", "addresses"],
  };
  return async (name) => {
    const domain = ctx.cache.domains.get(name);
    if (!domain || domain.metadata.deletionTimestamp) return awaitChange;
    const addresses = ctx.cache.addresses.byIndex(indexNames.domain, name);
    const admitted = addresses.filter((a) => domainVerdict(a, ctx.rules).ok).length;
    const status: MailDomainStatus = {
      observedGeneration: domain.metadata.generation,
      conditions: setCondition(
        domain.status?.conditions,
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
    await applyStatus(writer, domain, status);
    return awaitChange;
  };
}

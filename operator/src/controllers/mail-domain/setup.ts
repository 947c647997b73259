// The MailDomain controller's triggers: its own spec (never its status echo), the addresses of
// the domain, and the labels of namespaces its selector may admit.
import { controllerNames, type OperatorContext } from "../../context.ts";
import { domainOf } from "../../policy/domain.ts";
import { Controller, type ControllerSetup } from "../../runtime/controller.ts";
import { labelsChanged, specChanged, specOrMetadataChanged } from "../../runtime/triggers.ts";
import { indexNames } from "../gather.ts";
import { reconcileMailDomain } from "./reconcile.ts";

/** Many addresses change at once (an apply of a folder): one domain pass per this window. */
const coalescingMs = 500;

export function setupMailDomainController(ctx: OperatorContext): ControllerSetup {
  const { cache } = ctx;
  const controller = new Controller({
    name: controllerNames.domain,
    reconcile: reconcileMailDomain(ctx),
    log: ctx.log,
    workers: 1,
    metrics: ctx.metrics,
  });
  cache.domains.onChange((domain, old, deleted) => {
    if (!deleted && specChanged(domain, old)) controller.enqueue(domain.metadata.name);
  });
  cache.addresses.onChange((address, old, deleted) => {
    if (deleted || specOrMetadataChanged(address, old))
      controller.enqueueAfter(domainOf(address.spec.address), coalescingMs);
  });
  cache.namespaces.onChange((namespace, old, deleted) => {
    if (!deleted && !labelsChanged(namespace, old)) return;
    for (const a of cache.addresses.byIndex(indexNames.namespace, namespace.metadata.name))
      controller.enqueueAfter(domainOf(a.spec.address), coalescingMs);
  });
  return { controller, keys: () => cache.domains.keys() };
}

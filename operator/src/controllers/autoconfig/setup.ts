// The autoconfig controller's triggers: a MailDomain's spec (its client settings) or its deletion;
// never its status echo.
import { controllerNames, type OperatorContext } from "../../context.ts";
import { Controller, type ControllerSetup } from "../../runtime/controller.ts";
import { specChanged } from "../../runtime/triggers.ts";
import { autoconfigKey, reconcileAutoconfig } from "./reconcile.ts";

/** Domains applied together (a folder of them): one write. */
const coalescingMs = 500;

export function setupAutoconfigController(ctx: OperatorContext): ControllerSetup {
  const controller = new Controller({
    name: controllerNames.autoconfig,
    reconcile: reconcileAutoconfig(ctx),
    log: ctx.log,
    workers: 1,
    metrics: ctx.metrics,
  });
  ctx.cache.domains.onChange((domain, old, deleted) => {
    if (deleted || specChanged(domain, old)) controller.enqueueAfter(autoconfigKey, coalescingMs);
  });
  return { controller, keys: () => [autoconfigKey] };
}

// The last-used controller's triggers: a passdb-sync report that moves a device's latest login,
// and a change of a device whose login is known (its status may have been rewritten).
import { controllerNames, type OperatorContext } from "../../context.ts";
import { Controller, type ControllerSetup } from "../../runtime/controller.ts";
import { objectKey } from "../../runtime/informer.ts";
import { LastUsedState, reconcileLastUsed } from "./reconcile.ts";

export function setupLastUsedController(ctx: OperatorContext): ControllerSetup {
  const state = new LastUsedState();
  const controller = new Controller({
    name: controllerNames.lastUsed,
    reconcile: reconcileLastUsed(ctx, state),
    log: ctx.log,
    workers: 2,
    metrics: ctx.metrics,
  });
  ctx.mailServer.onChange(() => {
    for (const device of state.refresh(ctx)) controller.enqueue(device);
  });
  ctx.cache.devices.onChange((device, _old, deleted) => {
    const key = objectKey(device);
    if (deleted) state.written.delete(key);
    else if (state.logins.has(key)) controller.enqueue(key);
  });
  return {
    controller,
    keys: () => {
      state.refresh(ctx);
      return state.logins.keys();
    },
  };
}

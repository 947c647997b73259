// The invitation records controller's triggers: any change of a record (a redemption adds a setup
// ciphertext to remove later), and a device's deletion (its records must be revoked).
import { controllerNames, type OperatorContext } from "../../context.ts";
import { Controller, type ControllerSetup } from "../../runtime/controller.ts";
import { objectKey } from "../../runtime/informer.ts";
import { recordsByDevice } from "../invitation-gather.ts";
import { reconcileInvitationRecord } from "./reconcile.ts";

export function setupInvitationRecordsController(ctx: OperatorContext): ControllerSetup {
  const { cache } = ctx;
  const controller = new Controller({
    name: controllerNames.invitationRecords,
    reconcile: reconcileInvitationRecord(ctx),
    log: ctx.log,
    workers: 2,
    metrics: ctx.metrics,
  });
  cache.invitationRecords.onChange((configMap, _old, deleted) => {
    if (!deleted) controller.enqueue(objectKey(configMap));
  });
  cache.devices.onChange((device, _old, deleted) => {
    if (!deleted) return;
    for (const record of cache.invitationRecords.byIndex(recordsByDevice, device.metadata.uid))
      controller.enqueue(objectKey(record));
  });
  return { controller, keys: () => cache.invitationRecords.keys() };
}

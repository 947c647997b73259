// Deleting a Secret a MailDevice owns (its credential, or its invitation link): by the uid read, so
// a Secret re-created meanwhile is left alone; then the revocation counted, reported and logged.
import { reasons } from "../../api/conditions.ts";
import type { MailDevice } from "../../api/schemas.ts";
import type { OperatorContext } from "../../context.ts";
import { isNotFound } from "../../kube/errors.ts";
import type { SecretObject } from "../../kube/objects.ts";
import { named, resources } from "../../kube/resources.ts";
import type { ReconcileContext } from "../../runtime/controller.ts";

export async function deleteDeviceSecret(
  ctx: OperatorContext,
  device: MailDevice,
  secret: SecretObject,
  log: ReconcileContext["log"],
  report: { event: string; log: string },
): Promise<void> {
  try {
    await ctx.client.delete(named(resources.secrets, device.metadata.namespace, secret.metadata.name), {
      uid: secret.metadata.uid!,
    });
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  ctx.metrics.credential("revoked");
  ctx.events.record(device, "Normal", reasons.Revoked, report.event);
  log.info({ secret: secret.metadata.name }, report.log);
}

// The invitation records controller: one key per record in the operator's namespace. Whatever the
// devices do, a record loses its setup ciphertext when its setup window closes, is revoked when
// its device is gone, and is deleted when its retention after expiry is over.
import { invitationNames } from "../../api/names.ts";
import type { OperatorContext } from "../../context.ts";
import {
  InvalidInvitationRecord,
  parseInvitationRecord,
  revokedRecord,
  withoutSetup,
  type ConfigMapObject,
  type InvitationRecord,
} from "../../invitations/record.ts";
import { isConflict, isNotFound } from "../../kube/errors.ts";
import { named, resources } from "../../kube/resources.ts";
import { recordUpkeep } from "../../policy/invitation.ts";
import { awaitChange, requeueAfter, type Reconcile } from "../../runtime/controller.ts";

/** Does the record's device exist, or lie outside what this operator watches (then it is not ours to judge)? */
function deviceExists(ctx: OperatorContext, record: InvitationRecord): boolean {
  const { namespace, name, uid } = record.invitation.device;
  if (ctx.config.namespaces && !ctx.config.namespaces.includes(namespace)) return true;
  return ctx.cache.devices.get(`${namespace}/${name}`)?.metadata.uid === uid;
}

export function reconcileInvitationRecord(ctx: OperatorContext): Reconcile {
  return async (key, { log }) => {
    const configMap = ctx.cache.invitationRecords.get(key);
    if (!configMap) return awaitChange;
    let record: InvitationRecord;
    try {
      record = parseInvitationRecord(configMap);
    } catch (error) {
      // Its device's controller replaces an unreadable current record; a stray one stays for a person to see.
      if (error instanceof InvalidInvitationRecord) {
        log.warn(
          { record: configMap.metadata.name, why: error.message },
          "an invitation record does not parse",
        );
        return awaitChange;
      }
      throw error;
    }
    const { action, requeueAfterMs } = recordUpkeep({
      record,
      deviceExists: deviceExists(ctx, record),
      now: ctx.now(),
      retentionMs: ctx.config.invitationRetentionMs,
    });
    const ref = named(resources.configMaps, configMap.metadata.namespace, configMap.metadata.name);
    try {
      switch (action.type) {
        case "dropSetup":
        case "revoke": {
          const next =
            action.type === "dropSetup"
              ? withoutSetup(record)
              : {
                  ...revokedRecord(record),
                  metadata: {
                    ...configMap.metadata,
                    annotations: {
                      ...configMap.metadata.annotations,
                      [invitationNames.revokedBecauseAnnotation]: "Deleted",
                    },
                  },
                };
          const written = await ctx.client.replace<ConfigMapObject>(ref, next);
          ctx.cache.invitationRecords.assumeWritten(configMap.metadata.resourceVersion, written);
          log.info({ record: configMap.metadata.name, action: action.type }, "invitation record upkeep");
          return awaitChange; // the write brings the record back for its next step
        }
        case "delete":
          await ctx.client.delete(ref, {
            uid: configMap.metadata.uid!,
            resourceVersion: configMap.metadata.resourceVersion!,
          });
          log.info({ record: configMap.metadata.name }, "deleted an invitation record after its retention");
          return awaitChange;
        case "none":
          return requeueAfterMs !== undefined ? requeueAfter(requeueAfterMs) : awaitChange;
      }
    } catch (error) {
      // Someone (the portal, its device's controller) wrote it meanwhile: its watch event brings it back.
      if (isConflict(error) || isNotFound(error)) return awaitChange;
      throw error;
    }
  };
}

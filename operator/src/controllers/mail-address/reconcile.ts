// The MailAddress controller: reports the address's standing, device counts and limit, and the
// cutting of sessions, and holds deletion until every credential of its devices is revoked.
import { Ready, SessionsCut, reasons } from "../../api/conditions.ts";
import { finalizers } from "../../api/names.ts";
import type { MailAddress, MailAddressStatus } from "../../api/schemas.ts";
import { controllerNames, type OperatorContext } from "../../context.ts";
import { resources } from "../../kube/resources.ts";
import { addressReadiness, isReady } from "../../policy/address.ts";
import { setCondition } from "../../policy/conditions.ts";
import { normalizeAddress } from "../../policy/ownership.ts";
import { isOwnedBy } from "../../policy/secret.ts";
import { awaitChange, type Reconcile } from "../../runtime/controller.ts";
import { finalizer } from "../../runtime/finalizer.ts";
import { applyStatus, type StatusWriter } from "../../runtime/status.ts";
import { cachedSecret, deviceLimit, indexNames, standingOfAddress } from "../gather.ts";

const fieldManager = controllerNames.address;
const statusFields = ["observedGeneration", "conditions", "devices", "maxDevices", "readyDevices"] as const;

export function reconcileMailAddress(ctx: OperatorContext): Reconcile {
  const writer: StatusWriter<MailAddress> = {
    client: ctx.client,
    resource: resources.mailAddresses,
    fieldManager,
    events: ctx.events,
    cache: ctx.cache.addresses,
    fields: statusFields,
  };
  return async (key) => {
    const address = ctx.cache.addresses.get(key);
    if (!address) return awaitChange;
    const devices = ctx.cache.devices.byIndex(indexNames.addressObject, key);
    return finalizer(
      { client: ctx.client, resource: resources.mailAddresses, finalizer: finalizers.address, fieldManager },
      address,
      {
        // Done when no device of the address is in the database or holds a Secret of ours.
        cleanup: () => {
          const outstanding = devices.some((device) => {
            const secret = cachedSecret(ctx.cache, device);
            return (
              ctx.passdb.published(`${device.metadata.namespace}/${device.metadata.name}`) !== undefined ||
              (secret !== undefined && isOwnedBy(secret, device))
            );
          });
          return Promise.resolve(outstanding ? awaitChange : ("done" as const));
        },
        apply: async (live) => {
          const standing = standingOfAddress(ctx, live);
          const readiness = addressReadiness(standing, devices);
          const previous = live.status ?? {};
          let conditions = setCondition(
            previous.conditions,
            { type: Ready, ...readiness },
            live.metadata.generation,
            ctx.now(),
          );
          // Only the claim that issues hears about its sessions: never a claimant of another tenant.
          const kick =
            standing.state === "Issuing"
              ? ctx.sessions?.lastOutcome(normalizeAddress(live.spec.address))
              : undefined;
          if (kick) {
            const cut = kick.ok
              ? { status: "True" as const, reason: reasons.SessionsKicked, message: kick.message }
              : {
                  status: "False" as const,
                  reason: reasons.KickFailed,
                  message: `${kick.message} Retrying.`,
                };
            conditions = setCondition(
              conditions,
              { type: SessionsCut, ...cut },
              live.metadata.generation,
              kick.at,
            );
          } else conditions = conditions.filter((c) => c.type !== SessionsCut);
          const status: MailAddressStatus = {
            observedGeneration: live.metadata.generation,
            conditions,
            devices: devices.length,
            maxDevices: deviceLimit(ctx, standing.state === "Issuing" ? standing.domain : undefined),
            readyDevices: devices.filter(isReady).length,
          };
          await applyStatus(writer, live, status);
          return awaitChange;
        },
      },
    );
  };
}

// The MailAddress controller: reports the claim and device counts, and holds deletion until
// every credential of the address's devices is revoked (its finalizer).
import { isDeepStrictEqual } from "node:util";
import { apiVersion, finalizers, kinds } from "../../api/names.ts";
import { Ready, SessionsCut, reasons } from "../../api/conditions.ts";
import { normalizeAddress } from "../../policy/address-claims.ts";
import type { MailAddressStatus } from "../../api/schemas.ts";
import { controllerNames, type OperatorContext } from "../../context.ts";
import { isNotFound } from "../../kube/errors.ts";
import { named, resources } from "../../kube/resources.ts";
import { addressReadiness, isReady } from "../../policy/address.ts";
import { setCondition } from "../../policy/conditions.ts";
import { isOwnedBy } from "../../policy/secret.ts";
import { awaitChange, type Action } from "../../runtime/controller.ts";
import { cachedSecret, indexNames, standingOfAddress } from "../gather.ts";

const fieldManager = controllerNames.address;

export function reconcileMailAddress(ctx: OperatorContext) {
  return async (key: string): Promise<Action> => {
    const address = ctx.cache.addresses.get(key);
    if (!address) return awaitChange;
    const ref = named(resources.mailAddresses, address.metadata.namespace, address.metadata.name);
    const devices = ctx.cache.devices.byIndex(indexNames.addressObject, key);
    const hasFinalizer = address.metadata.finalizers?.includes(finalizers.address) ?? false;

    if (address.metadata.deletionTimestamp) {
      if (!hasFinalizer) return awaitChange;
      // Done when no device of the address is in the database or holds a Secret of ours.
      const outstanding = devices.some((device) => {
        const secret = cachedSecret(ctx.cache, device);
        return (
          ctx.passdb.published(`${device.metadata.namespace}/${device.metadata.name}`) !== undefined ||
          (secret !== undefined && isOwnedBy(secret, device))
        );
      });
      if (outstanding) return awaitChange;
      try {
        await ctx.client.mergePatch(
          ref,
          {
            metadata: {
              resourceVersion: address.metadata.resourceVersion,
              finalizers: (address.metadata.finalizers ?? []).filter((f) => f !== finalizers.address),
            },
          },
          fieldManager,
        );
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      return awaitChange;
    }

    if (!hasFinalizer) {
      await ctx.client.mergePatch(
        ref,
        {
          metadata: {
            resourceVersion: address.metadata.resourceVersion,
            finalizers: [...(address.metadata.finalizers ?? []), finalizers.address],
          },
        },
        fieldManager,
      );
      return awaitChange; // the update brings us back with the new object
    }

    const readiness = addressReadiness(standingOfAddress(ctx, address), devices);
    const previous = address.status ?? {};
    let conditions = setCondition(
      previous.conditions,
      { type: Ready, ...readiness },
      address.metadata.generation,
      ctx.now(),
    );
    const kick = ctx.sessions?.lastOutcome(normalizeAddress(address.spec.address));
    if (kick) {
      const cut = kick.ok
        ? { status: "True" as const, reason: reasons.SessionsKicked, message: kick.message }
        : { status: "False" as const, reason: reasons.KickFailed, message: `${kick.message} Retrying.` };
      conditions = setCondition(
        conditions,
        { type: SessionsCut, ...cut },
        address.metadata.generation,
        kick.at,
      );
    }
    const status: MailAddressStatus = {
      observedGeneration: address.metadata.generation,
      conditions,
      devices: devices.length,
      readyDevices: devices.filter(isReady).length,
    };
    if (isDeepStrictEqual(JSON.parse(JSON.stringify(status)), JSON.parse(JSON.stringify(previous))))
      return awaitChange;
    const previousReason = previous.conditions?.find((c) => c.type === "Ready")?.reason;
    if (readiness.status === "False" && readiness.reason !== previousReason) {
      ctx.events.record(address, "Warning", readiness.reason, readiness.message);
    }
    const written = await ctx.client.apply<unknown>(
      named(resources.mailAddresses, address.metadata.namespace, address.metadata.name, "status"),
      {
        apiVersion,
        kind: kinds.mailAddress.kind,
        metadata: { name: address.metadata.name, namespace: address.metadata.namespace },
        status,
      },
      fieldManager,
    );
    // The next pass must compare against this status, not the one before (see Informer.assumeWritten).
    ctx.cache.addresses.assumeWritten(address.metadata.resourceVersion, written);
    return awaitChange;
  };
}

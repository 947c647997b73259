// Reads shared by the controllers: a device's address standing and its Secret, from the caches.
import type { MailAddress, MailDevice } from "../api/schemas.ts";
import { defaultSecretName } from "../api/names.ts";
import type { Caches, OperatorContext } from "../context.ts";
import { domainAdmits } from "../policy/domain.ts";
import { addressFitsKey } from "../passdb/format.ts";
import {
  addressStanding,
  normalizeAddress,
  type AddressStanding,
  type DomainRules,
} from "../policy/address-claims.ts";
import type { SecretObject } from "../policy/secret.ts";

export const indexNames = {
  /** MailAddress by normalized mail address. */
  mailAddress: "mailAddress",
  /** MailDevice by `namespace/addressName`. */
  addressObject: "addressObject",
  /** MailAddress by the domain of its mail address. */
  domain: "domain",
} as const;

export function secretNameOf(device: MailDevice): string {
  return device.spec.secretName ?? defaultSecretName(device.metadata.name);
}

export function addressKeyOf(device: MailDevice): string {
  return `${device.metadata.namespace}/${device.spec.address}`;
}

export function claimsOf(cache: Caches, address: MailAddress): MailAddress[] {
  return cache.addresses.byIndex(indexNames.mailAddress, normalizeAddress(address.spec.address));
}

export function standingOfAddress(
  { cache, rules }: Pick<OperatorContext, "cache" | "rules">,
  address: MailAddress | undefined,
): AddressStanding {
  return addressStanding(address, address ? claimsOf(cache, address) : [], addressFitsKey, rules);
}

export function gatherStanding(
  ctx: Pick<OperatorContext, "cache" | "rules">,
  device: MailDevice,
): AddressStanding {
  return standingOfAddress(ctx, ctx.cache.addresses.get(addressKeyOf(device)));
}

/** The tenant boundary as the caches see it now. */
export function domainRules(cache: Caches, required: boolean): DomainRules {
  return {
    required,
    domain: (name) => cache.domains.get(name),
    admits: (domain, namespace) =>
      domainAdmits(domain, namespace, cache.namespaces.get(namespace)?.metadata.labels),
  };
}

export function cachedSecret(cache: Caches, device: MailDevice): SecretObject | undefined {
  return cache.secrets.get(`${device.metadata.namespace}/${secretNameOf(device)}`);
}

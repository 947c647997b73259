// Reads shared by the controllers: a device's address standing and its Secret, from the caches.
import type { MailAddress, MailDevice } from "../api/schemas.ts";
import { defaultSecretName } from "../api/names.ts";
import type { Caches } from "../context.ts";
import { addressFitsKey } from "../passdb/format.ts";
import { addressStanding, normalizeAddress, type AddressStanding } from "../policy/address-claims.ts";
import type { SecretObject } from "../policy/secret.ts";

export const indexNames = {
  /** MailAddress by normalized mail address. */
  mailAddress: "mailAddress",
  /** MailDevice by `namespace/addressName`. */
  addressObject: "addressObject",
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

export function standingOfAddress(cache: Caches, address: MailAddress | undefined): AddressStanding {
  return addressStanding(address, address ? claimsOf(cache, address) : [], addressFitsKey);
}

export function gatherStanding(cache: Caches, device: MailDevice): AddressStanding {
  return standingOfAddress(cache, cache.addresses.get(addressKeyOf(device)));
}

export function cachedSecret(cache: Caches, device: MailDevice): SecretObject | undefined {
  return cache.secrets.get(`${device.metadata.namespace}/${secretNameOf(device)}`);
}

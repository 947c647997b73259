// Reads shared by the controllers: an address's standing (ownership included), a device's place
// under its address's device limit, its Secret and what that Secret's record is worth, from the
// caches and the operator's own state.
import { defaultSecretName } from "../api/names.ts";
import type { MailAddress, MailDevice, MailDomain } from "../api/schemas.ts";
import type { Caches, OperatorContext } from "../context.ts";
import { passwordDigest } from "../credentials/password.ts";
import type { SecretObject } from "../kube/objects.ts";
import { addressFitsKey } from "../passdb/format.ts";
import { deviceKey, publishableEntry, secretState, type SecretState } from "../policy/device.ts";
import { domainAdmits, domainOf } from "../policy/domain.ts";
import {
  addressStanding,
  claimSummary,
  normalizeAddress,
  reservedNamespace,
  type AddressStanding,
  type DomainRules,
  type OwnershipRecord,
} from "../policy/ownership.ts";
import { checkCredential, type CredentialCheck } from "../policy/secret.ts";
import type { PassdbEntry } from "../passdb/format.ts";

export const indexNames = {
  /** MailAddress by normalized mail address. */
  mailAddress: "mailAddress",
  /** MailDevice by `namespace/addressName`. */
  addressObject: "addressObject",
  /** MailAddress by the domain of its mail address. */
  domain: "domain",
  /** MailAddress by namespace. */
  namespace: "namespace",
  /** MailAddress by the shard of its mail address. */
  shard: "shard",
} as const;

/** The indexes every controller relies on; added once, before the caches start. */
export function addIndexes(ctx: Pick<OperatorContext, "cache" | "database">): void {
  const { cache, database } = ctx;
  cache.addresses.addIndex(indexNames.domain, (a) => [domainOf(a.spec.address)]);
  cache.addresses.addIndex(indexNames.mailAddress, (a) => [normalizeAddress(a.spec.address)]);
  cache.addresses.addIndex(indexNames.namespace, (a) => [a.metadata.namespace!]);
  cache.addresses.addIndex(indexNames.shard, (a) => [
    String(database.shardOf(normalizeAddress(a.spec.address))),
  ]);
  cache.devices.addIndex(indexNames.addressObject, (d) => [addressKeyOf(d)]);
}

export function secretNameOf(device: MailDevice): string {
  return device.spec.secretName ?? defaultSecretName(device.metadata.name);
}

export function addressKeyOf(device: MailDevice): string {
  return `${device.metadata.namespace}/${device.spec.address}`;
}

export function claimsOf(cache: Caches, mailAddress: string): MailAddress[] {
  return cache.addresses.byIndex(indexNames.mailAddress, mailAddress);
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

/** Who owns `mailAddress` now, after the claims as the caches see them (advances the record). */
export function resolveOwner(
  ctx: Pick<OperatorContext, "cache" | "rules" | "ownership">,
  mailAddress: string,
): OwnershipRecord | undefined {
  const claims = claimsOf(ctx.cache, mailAddress);
  const domain = ctx.rules.domain(domainOf(mailAddress));
  return ctx.ownership.resolve(mailAddress, {
    ...claimSummary(claims, ctx.rules),
    reserved: reservedNamespace(domain, mailAddress),
  });
}

export function standingOfAddress(
  ctx: Pick<OperatorContext, "cache" | "rules" | "ownership">,
  address: MailAddress | undefined,
): AddressStanding {
  if (!address) return { state: "NotFound" };
  const mailAddress = normalizeAddress(address.spec.address);
  const owner = resolveOwner(ctx, mailAddress);
  return addressStanding(address, claimsOf(ctx.cache, mailAddress), owner, addressFitsKey, ctx.rules);
}

export function gatherStanding(
  ctx: Pick<OperatorContext, "cache" | "rules" | "ownership">,
  device: MailDevice,
): AddressStanding {
  return standingOfAddress(ctx, ctx.cache.addresses.get(addressKeyOf(device)));
}

export function cachedSecret(cache: Caches, device: MailDevice): SecretObject | undefined {
  return cache.secrets.get(`${device.metadata.namespace}/${secretNameOf(device)}`);
}

/** How many devices an address of `domain` may have. */
export function deviceLimit(ctx: Pick<OperatorContext, "config">, domain: MailDomain | undefined): number {
  return domain?.spec.devicePolicy?.maxDevicesPerAddress ?? ctx.config.maxDevicesPerAddress;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/**
 * Oldest first. creationTimestamp is RFC 3339 in UTC to the second, set by the API server, so its
 * text sorts as its time does (no Date.parse in a comparator that runs for every device pass).
 */
const byAge = (a: MailDevice, b: MailDevice) =>
  compare(a.metadata.creationTimestamp, b.metadata.creationTimestamp) ||
  compare(a.metadata.namespace ?? "", b.metadata.namespace ?? "") ||
  compare(a.metadata.name, b.metadata.name);

/** The live devices of an address object, oldest first: the first `limit` of them may have a password. */
export function liveDevicesOf(cache: Caches, addressKey: string): MailDevice[] {
  return cache.devices
    .byIndex(indexNames.addressObject, addressKey)
    .filter((d) => !d.metadata.deletionTimestamp)
    .sort(byAge);
}

/** Is the device beyond its address's limit (newer than the `limit` oldest live devices)? */
export function isOverLimit(cache: Caches, device: MailDevice, limit: number): boolean {
  if (device.metadata.deletionTimestamp) return false;
  const live = liveDevicesOf(cache, addressKeyOf(device));
  const index = live.findIndex((d) => d.metadata.uid === device.metadata.uid);
  return index >= limit;
}

/**
 * Checks already made, per cached Secret object: the informer replaces an object on every change,
 * so a Secret seen again unchanged costs no base64, SHA-256 or HMAC (a database pass reads every
 * device of a shard).
 */
const checked = new WeakMap<
  SecretObject,
  { uid: string; name: string; mailAddress: string; check: CredentialCheck }
>();

/** What a device's own Secret is worth, read back as input (only when the address issues). */
export function credentialOf(
  ctx: Pick<OperatorContext, "seal" | "config">,
  device: MailDevice,
  secret: SecretState,
  standing: AddressStanding,
): CredentialCheck | undefined {
  if (secret.kind !== "owned" || standing.state !== "Issuing") return undefined;
  const { mailAddress } = standing;
  const { uid, name } = device.metadata;
  const memo = checked.get(secret.secret);
  if (memo && memo.uid === uid && memo.name === name && memo.mailAddress === mailAddress) return memo.check;
  const check = checkCredential(secret.secret, device, mailAddress, {
    seal: ctx.seal,
    argon2: ctx.config.argon2,
    digest: passwordDigest,
  });
  checked.set(secret.secret, { uid, name, mailAddress, check });
  return check;
}

/** Every device gathered for a decision: standing, Secret, credential and limit. */
export interface DeviceWorld {
  standing: AddressStanding;
  secret: SecretState;
  credential: CredentialCheck | undefined;
  overLimit: boolean;
  limit: number;
}

export function gatherDevice(ctx: OperatorContext, device: MailDevice, secret?: SecretObject): DeviceWorld {
  const standing = gatherStanding(ctx, device);
  const state = secretState(secret ?? cachedSecret(ctx.cache, device), device);
  const limit = deviceLimit(ctx, standing.state === "Issuing" ? standing.domain : undefined);
  return {
    standing,
    secret: state,
    credential: credentialOf(ctx, device, state, standing),
    overLimit: standing.state === "Issuing" && isOverLimit(ctx.cache, device, limit),
    limit,
  };
}

/** The database entry a device may have now. */
export function deviceEntry(ctx: OperatorContext, device: MailDevice): PassdbEntry | undefined {
  const world = gatherDevice(ctx, device);
  return publishableEntry({ device, ...world });
}

export { deviceKey };

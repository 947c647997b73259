// The core/v1 and coordination/v1 objects devicepass reads and writes, as far as it uses them.
import type { OwnerReference } from "../api/schemas.ts";

export interface ObjectMetadata {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  deletionTimestamp?: string;
}

export interface SecretObject {
  apiVersion?: string;
  kind?: string;
  type?: string;
  metadata: ObjectMetadata;
  data?: Record<string, string>;
}

export interface ConfigMapObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMetadata;
  data?: Record<string, string>;
}

export interface NamespaceObject {
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string> };
}

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** Secret data is base64: decoded as UTF-8 text. */
export function decodeData(secret: { data?: Record<string, string> }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, "base64").toString("utf8");
  return out;
}

/** Secret data from text, keys sorted so that equal data is equal bytes. */
export function encodeData(data: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(data).sort()) out[k] = Buffer.from(data[k]!, "utf8").toString("base64");
  return out;
}

// The resources devicepass reads and writes, as REST references.
import { group, kinds, version } from "../api/names.ts";
import type { ResourceRef } from "./client.ts";

export const resources = {
  mailAddresses: { group, version, plural: kinds.mailAddress.plural },
  mailDevices: { group, version, plural: kinds.mailDevice.plural },
  mailDomains: { group, version, plural: kinds.mailDomain.plural },
  secrets: { group: "", version: "v1", plural: "secrets" },
  configMaps: { group: "", version: "v1", plural: "configmaps" },
  events: { group: "", version: "v1", plural: "events" },
  namespaces: { group: "", version: "v1", plural: "namespaces" },
  leases: { group: "coordination.k8s.io", version: "v1", plural: "leases" },
} satisfies Record<string, ResourceRef>;

export function named(
  ref: ResourceRef,
  namespace: string | undefined,
  name: string,
  subresource?: string,
): ResourceRef {
  return { ...ref, namespace, name, subresource };
}

/** The namespaced collection of `ref`, where objects are created. */
export function inNamespace(ref: ResourceRef, namespace: string | undefined): ResourceRef {
  return { ...ref, namespace, name: undefined, subresource: undefined };
}

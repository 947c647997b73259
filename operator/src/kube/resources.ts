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
} satisfies Record<string, ResourceRef>;

export function named(
  ref: ResourceRef,
  namespace: string | undefined,
  name: string,
  subresource?: string,
): ResourceRef {
  return { ...ref, namespace, name, subresource };
}

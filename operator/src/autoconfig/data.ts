// Mail client autoconfiguration data: the operator publishes each admitted domain's client
// settings into one ConfigMap of its own namespace; the portal (which may not read MailDomains)
// watches that ConfigMap by name and answers clients from it.
import { invitationNames, labels, managedByValue } from "../api/names.ts";
import { clientSettingsSchema, type ClientSettings } from "../api/schemas.ts";
import type { ConfigMapObject } from "../invitations/record.ts";

const protocols = ["imap", "pop3", "smtp"] as const;

/** A domain's settings over the operator's defaults, protocol by protocol (as addresses inherit them). */
export function inheritSettings(
  domain: ClientSettings | undefined,
  defaults: ClientSettings,
): ClientSettings {
  const out: ClientSettings = {};
  for (const protocol of protocols) {
    const endpoint = domain?.[protocol] ?? defaults[protocol];
    if (endpoint) out[protocol] = { host: endpoint.host, port: endpoint.port, security: endpoint.security };
  }
  return out;
}

/** ConfigMap keys allow [-._a-zA-Z0-9]; a domain name is stored lower-case. */
const domainKeyPattern = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;

export interface AutoconfigDomain {
  /** The MailDomain's name: the domain. */
  name: string;
  clientSettings?: ClientSettings | undefined;
}

/**
 * The data of the autoconfig ConfigMap: key = domain, value = JSON of its inherited client
 * settings. Domains without any setting are left out (a client would learn nothing).
 */
export function desiredAutoconfigData(
  domains: readonly AutoconfigDomain[],
  defaults: ClientSettings,
): Record<string, string> {
  const data: Record<string, string> = {};
  const byKey = domains.map((d) => [d.name.toLowerCase(), d] as const);
  for (const [key, domain] of byKey.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!domainKeyPattern.test(key) || key.length > 253) continue;
    const settings = inheritSettings(domain.clientSettings, defaults);
    if (Object.keys(settings).length === 0) continue;
    data[key] = JSON.stringify(settings);
  }
  return data;
}

/** The whole ConfigMap the operator applies (admitted domains only: the caller filters). */
export function desiredAutoconfigConfigMap(
  namespace: string,
  domains: readonly AutoconfigDomain[],
  defaults: ClientSettings,
): ConfigMapObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: invitationNames.autoconfigConfigMap,
      namespace,
      labels: { [labels.managedBy]: managedByValue, [labels.component]: invitationNames.autoconfigComponent },
    },
    data: desiredAutoconfigData(domains, defaults),
  };
}

/** The settings per domain the portal serves; entries that do not parse are left out. */
export function parseAutoconfigData(data: Record<string, string> | undefined): Map<string, ClientSettings> {
  const out = new Map<string, ClientSettings>();
  for (const [key, value] of Object.entries(data ?? {})) {
    if (!domainKeyPattern.test(key)) continue;
    try {
      const parsed = clientSettingsSchema.safeParse(JSON.parse(value));
      if (parsed.success && Object.keys(parsed.data).length > 0) out.set(key, parsed.data);
    } catch {
      // not JSON: skipped
    }
  }
  return out;
}

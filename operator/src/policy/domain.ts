// Pure decisions of the tenant boundary: does a MailDomain admit a namespace, and what do the
// domain's settings and device policy make of an address's and a device's own.
import type { ClientSettings, LabelSelector, MailDevice, MailDomain, MailProtocol } from "../api/schemas.ts";
import { mailProtocols } from "../api/schemas.ts";

/** The domain part of a mail address, lower-case. */
export function domainOf(mailAddress: string): string {
  return mailAddress.slice(mailAddress.lastIndexOf("@") + 1).toLowerCase();
}

/** Kubernetes label selector semantics; an empty selector matches everything. */
export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    const ok =
      operator === "In"
        ? has && values.includes(labels[key]!)
        : operator === "NotIn"
          ? !has || !values.includes(labels[key]!)
          : operator === "Exists"
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}

/** Either rule admitting is enough: the namespace is listed, or its labels match the selector. */
export function domainAdmits(
  domain: MailDomain,
  namespace: string,
  namespaceLabels: Readonly<Record<string, string>> | undefined,
): boolean {
  if (domain.spec.namespaces?.includes(namespace)) return true;
  const selector = domain.spec.namespaceSelector;
  return (
    selector !== undefined && namespaceLabels !== undefined && selectorMatches(selector, namespaceLabels)
  );
}

/** Per protocol, the most specific settings win: address, then domain, then the operator's defaults. */
export function inheritedClientSettings(
  operatorDefaults: ClientSettings,
  domain: ClientSettings | undefined,
  address: ClientSettings | undefined,
): ClientSettings {
  const out: ClientSettings = {};
  for (const protocol of mailProtocols) {
    const endpoint = address?.[protocol] ?? domain?.[protocol] ?? operatorDefaults[protocol];
    if (endpoint) out[protocol] = endpoint;
  }
  return out;
}

/** The protocols a device's password is good for, or the ones it asks for that the domain forbids. */
export function deviceProtocolsUnder(
  device: MailDevice,
  domain: MailDomain | undefined,
): { protocols: MailProtocol[]; forbidden: MailProtocol[] } {
  const allowed = domain?.spec.devicePolicy?.allowedProtocols ?? mailProtocols;
  const requested = device.spec.protocols;
  if (!requested) return { protocols: [...allowed], forbidden: [] };
  return {
    protocols: requested.filter((p) => allowed.includes(p)),
    forbidden: requested.filter((p) => !allowed.includes(p)),
  };
}

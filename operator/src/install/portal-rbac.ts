// The portal's RBAC: it faces the internet, so it may only get and update ConfigMaps in the
// operator's namespace (invitation records, read by name, redeemed by update) and watch the one
// autoconfig ConfigMap by name. Nothing cluster-wide, no Secrets, no list.
import type { PolicyRule } from "./rbac.ts";

export function portalRules(autoconfigConfigMap: string): PolicyRule[] {
  return [
    { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "update"] },
    { apiGroups: [""], resources: ["configmaps"], verbs: ["watch"], resourceNames: [autoconfigConfigMap] },
  ];
}

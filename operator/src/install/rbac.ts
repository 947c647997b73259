// The operator's RBAC rules and the aggregated user roles: exactly the API calls of operator.ts
// (its informers), operator/src/controllers, credentials/seal-key-secret.ts and kube/events.ts.
// README.md explains each rule.
import { group, kinds } from "../api/names.ts";

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const devicepassResources = [kinds.mailAddress.plural, kinds.mailDevice.plural];

/**
 * In every watched namespace (a RoleBinding per namespace, or one ClusterRoleBinding when the
 * operator watches all namespaces).
 */
export const watchedNamespaceRules: PolicyRule[] = [
  // Informers list and watch; finalizers and the device's address label are merge patches.
  // `get` adds nothing that `list` does not already give, and keeps the usual read triple.
  { apiGroups: [group], resources: devicepassResources, verbs: ["get", "list", "watch", "patch"] },
  // Status is written by server-side apply, a PATCH of the status subresource.
  { apiGroups: [group], resources: devicepassResources.map((r) => `${r}/status`), verbs: ["patch"] },
  // Device credential Secrets: watched by label; created (a 409 is followed by a GET by name, to
  // tell a Secret devicepass does not own from one whose labels were removed); server-side applied
  // (patch); deleted on revocation. Never updated. The chart's ValidatingAdmissionPolicy refuses
  // any write of the operator's to a Secret that is not devicepass's own.
  {
    apiGroups: [""],
    resources: ["secrets"],
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
  },
  // Events on MailAddresses and MailDevices (core/v1, created only).
  { apiGroups: [""], resources: ["events"], verbs: ["create"] },
];

/**
 * Cluster-wide, whatever namespaces are watched: MailDomains are cluster-scoped, and a domain's
 * namespaceSelector is matched against the labels of Namespaces (both read by informers).
 */
export const clusterRules: PolicyRule[] = [
  { apiGroups: [group], resources: [kinds.mailDomain.plural], verbs: ["get", "list", "watch"] },
  // The MailDomain controller writes status by server-side apply.
  { apiGroups: [group], resources: [`${kinds.mailDomain.plural}/status`], verbs: ["patch"] },
  { apiGroups: [""], resources: ["namespaces"], verbs: ["get", "list", "watch"] },
];

/**
 * In the password database namespace. Shards are replaced whole (PUT, `update`) with the version
 * read as a precondition, and deleted when passdb.shards shrinks: both only for the shard names
 * (every name a shard may have, up to the largest shard count). Create cannot be limited by name,
 * so a new shard is created, but no other Secret of the namespace can be overwritten or deleted.
 */
export function passdbRules(shardNames: string[]): PolicyRule[] {
  return [
    { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch", "create"] },
    { apiGroups: [""], resources: ["secrets"], verbs: ["update", "delete"], resourceNames: shardNames },
    // The passdb-sync reports (last logins, shard versions on disk), watched by label: read only.
    { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] },
  ];
}

/**
 * The passdb-sync sidecar's, in the password database namespace: read the shard Secrets by name,
 * and patch its report, nothing else. A Role's resourceNames allow a list or watch only when the
 * request selects that one name (`fieldSelector=metadata.name=…`, checked on kube-apiserver
 * 1.35): so the sidecar watches each shard on its own, and can read no other Secret. The report
 * ConfigMap is created by the install (a create cannot be limited by name).
 */
export function passdbSyncRules(shardNames: string[], reportName: string): PolicyRule[] {
  return [
    { apiGroups: [""], resources: ["secrets"], verbs: ["list", "watch"], resourceNames: shardNames },
    { apiGroups: [""], resources: ["configmaps"], verbs: ["patch"], resourceNames: [reportName] },
  ];
}

/**
 * In the operator's own namespace: the Lease of leader election, the operator's seal key Secret
 * (read by name; created when missing: create cannot be limited by name), the invitation records
 * (ConfigMaps named after their token's hash, so no name can limit them: watched by label,
 * created, revoked by a whole replacement with the version read, deleted after their retention)
 * and the autoconfig ConfigMap (server-side applied, by name). The chart's ValidatingAdmissionPolicy
 * keeps these ConfigMap writes to devicepass's own two kinds.
 */
export function operatorNamespaceRules(sealKeySecret: string, autoconfigConfigMap: string): PolicyRule[] {
  return [
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
    { apiGroups: [""], resources: ["secrets"], verbs: ["get"], resourceNames: [sealKeySecret] },
    { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
    {
      apiGroups: [""],
      resources: ["configmaps"],
      verbs: ["get", "list", "watch", "create", "update", "delete"],
    },
    { apiGroups: [""], resources: ["configmaps"], verbs: ["patch"], resourceNames: [autoconfigConfigMap] },
  ];
}

/** Aggregated into the built-in view role (and so into edit and admin): see devices, never Secrets. */
export const viewRules: PolicyRule[] = [
  {
    apiGroups: [group],
    resources: [...devicepassResources, ...devicepassResources.map((r) => `${r}/status`)],
    verbs: ["get", "list", "watch"],
  },
];

/** Aggregated into edit and admin: create, rotate (annotate) and delete devices and addresses. */
export const editRules: PolicyRule[] = [
  {
    apiGroups: [group],
    resources: devicepassResources,
    verbs: ["create", "update", "patch", "delete", "deletecollection"],
  },
];

/**
 * Reading MailDomains (cluster-scoped, so no namespace role can grant it): which namespaces a
 * domain admits and what its addresses inherit. Bound to the group in values.mailDomainReaders.
 */
export const mailDomainReaderRules: PolicyRule[] = [
  {
    apiGroups: [group],
    resources: [kinds.mailDomain.plural, `${kinds.mailDomain.plural}/status`],
    verbs: ["get", "list", "watch"],
  },
];

export const aggregationLabels = {
  view: "rbac.authorization.k8s.io/aggregate-to-view",
  edit: "rbac.authorization.k8s.io/aggregate-to-edit",
  admin: "rbac.authorization.k8s.io/aggregate-to-admin",
} as const;

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

/** The data keys a record may have; see invitations/record.ts recordKeys. */
const recordKeyList = [
  "invitation",
  "seal",
  "state",
  "redeemedAt",
  "passwordHash",
  "setupCiphertext",
  "setupExpiresAt",
];

const same = (path: string) =>
  `(has(object.${path}) == has(oldObject.${path}) && (!has(object.${path}) || object.${path} == oldObject.${path}))`;

/**
 * RBAC cannot grant ConfigMap updates by label, so the portal's Role lets it update every
 * ConfigMap of the release namespace (the Dovecot configuration may live there). This policy
 * narrows its updates to what redemption does: pending → redeemed of an invitation record,
 * writing only the hash, the time and the setup ciphertext, and later dropping that ciphertext.
 */
export function portalAdmissionPolicy(options: {
  name: string;
  namespace: string;
  serviceAccount: string;
  labels?: Record<string, string>;
}): object[] {
  const user = `system:serviceaccount:${options.namespace}:${options.serviceAccount}`;
  const policy = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicy",
    metadata: { name: options.name, ...(options.labels ? { labels: options.labels } : {}) },
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        resourceRules: [
          { apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["configmaps"] },
        ],
      },
      matchConditions: [
        { name: "portal", expression: `request.userInfo.username == ${JSON.stringify(user)}` },
      ],
      validations: [
        {
          expression:
            "has(oldObject.metadata.labels) && 'app.kubernetes.io/component' in oldObject.metadata.labels && oldObject.metadata.labels['app.kubernetes.io/component'] == 'invitation' && oldObject.metadata.name.startsWith('devicepass-invitation-')",
          message: "the portal may update invitation records only",
        },
        {
          expression: [
            same("metadata.labels"),
            same("metadata.annotations"),
            same("metadata.finalizers"),
            same("metadata.ownerReferences"),
            "!has(object.binaryData)",
          ].join(" && "),
          message: "the portal may not change a record's metadata",
        },
        {
          expression: `has(object.data) && has(oldObject.data) && object.data.all(k, k in ${JSON.stringify(recordKeyList)}) && has(object.data.invitation) && has(oldObject.data.invitation) && object.data.invitation == oldObject.data.invitation && has(object.data.seal) && has(oldObject.data.seal) && object.data.seal == oldObject.data.seal && has(object.data.state) && has(oldObject.data.state)`,
          message: "the portal may not change what the operator sealed",
        },
        {
          expression:
            "(oldObject.data.state == 'pending' && !has(oldObject.data.passwordHash) && object.data.state == 'redeemed' && has(object.data.passwordHash) && has(object.data.redeemedAt)) || " +
            "(oldObject.data.state == 'redeemed' && object.data.state == 'redeemed' && has(object.data.passwordHash) && has(oldObject.data.passwordHash) && object.data.passwordHash == oldObject.data.passwordHash && " +
            `${same("data.redeemedAt")} && !has(object.data.setupCiphertext) && !has(object.data.setupExpiresAt))`,
          message:
            "the portal may only redeem a pending invitation, or drop the setup ciphertext of a redeemed one",
        },
      ],
    },
  };
  const binding = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name: options.name, ...(options.labels ? { labels: options.labels } : {}) },
    spec: {
      policyName: options.name,
      validationActions: ["Deny"],
      matchResources: {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": options.namespace } },
      },
    },
  };
  return [policy, binding];
}

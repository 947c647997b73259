// ValidatingAdmissionPolicies on the operator's own Secret and ConfigMap writes: RBAC cannot grant
// them by label, so an operator that may write Secrets in a namespace could write any of them,
// and one that manages invitation records could rewrite any ConfigMap of its own namespace (the
// Dovecot configuration may live there). These policies let its ServiceAccount create, change
// and delete only devicepass's own: a device's credentials and invitation link, owned by its
// MailDevice; the database shards; its seal key; the invitation records and the autoconfig
// ConfigMap in its own namespace.
import { ApiObject } from "cdk8s";
import type { Construct } from "constructs";
import { components, invitationNames, labels, managedByValue } from "../api/names.ts";
import type { Release } from "./wiring.ts";

const secretComponents = [
  components.credentials,
  components.passdb,
  components.sealKey,
  components.invitationLink,
];
const configMapComponents = [invitationNames.component, invitationNames.autoconfigComponent];
const list = (values: readonly string[]) => `[${values.map((v) => `'${v}'`).join(", ")}]`;

const oursAmong = (object: string, allowed: readonly string[]) =>
  `has(${object}.metadata.labels) && '${labels.managedBy}' in ${object}.metadata.labels && ` +
  `${object}.metadata.labels['${labels.managedBy}'] == '${managedByValue}' && ` +
  `'${labels.component}' in ${object}.metadata.labels && ` +
  `${object}.metadata.labels['${labels.component}'] in ${list(allowed)}`;
const ours = (object: string) => oursAmong(object, secretComponents);
const ownedByDevice = (object: string) =>
  `has(${object}.metadata.ownerReferences) && ${object}.metadata.ownerReferences.exists(r, r.kind == 'MailDevice' && has(r.controller) && r.controller)`;

interface Validation {
  expression: string;
  message: string;
}

/**
 * A policy, and its Deny binding, on the operator's ServiceAccount's writes of one core/v1
 * resource; `variables.target` is the object written, or the one deleted.
 */
function operatorWritePolicy(
  scope: Construct,
  id: string,
  { release, labels: objectLabels }: { release: Release; labels: Record<string, string> },
  { name, resource, validations }: { name: string; resource: string; validations: Validation[] },
): void {
  const serviceAccount = `system:serviceaccount:${release.namespace}:${release.name}`;
  new ApiObject(scope, `${id}policy`, {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicy",
    metadata: { name, labels: objectLabels },
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        resourceRules: [
          {
            apiGroups: [""],
            apiVersions: ["v1"],
            operations: ["CREATE", "UPDATE", "DELETE"],
            resources: [resource],
          },
        ],
      },
      matchConditions: [
        { name: "the-devicepass-operator", expression: `request.userInfo.username == '${serviceAccount}'` },
      ],
      variables: [{ name: "target", expression: "request.operation == 'DELETE' ? oldObject : object" }],
      validations,
    },
  });
  new ApiObject(scope, `${id}binding`, {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name, labels: objectLabels },
    spec: { policyName: name, validationActions: ["Deny"] },
  });
}

export function secretWritePolicy(
  scope: Construct,
  {
    release,
    labels: objectLabels,
    passdbNamespace,
  }: { release: Release; labels: Record<string, string>; passdbNamespace: string },
): void {
  operatorWritePolicy(
    scope,
    "",
    { release, labels: objectLabels },
    {
      name: `${release.name}-secret-writes`,
      resource: "secrets",
      validations: [
        {
          // What it writes, or deletes, must be one of its own kinds of Secret…
          expression: ours("variables.target"),
          message: `the devicepass operator may write only its own Secrets (labels ${labels.managedBy}=${managedByValue} and ${labels.component} ${secretComponents.join(", ")})`,
        },
        {
          // …a credential or invitation link Secret belongs to a MailDevice…
          expression: `!(variables.target.metadata.labels['${labels.component}'] in ${list([components.credentials, components.invitationLink])}) || ${ownedByDevice("variables.target")}`,
          message: "a devicepass credential or invitation link Secret must be owned by its MailDevice",
        },
        {
          // …shards live in the database namespace only…
          expression: `variables.target.metadata.labels['${labels.component}'] != '${components.passdb}' || request.namespace == '${passdbNamespace}'`,
          message: `devicepass writes database shards only in namespace ${passdbNamespace}`,
        },
        {
          // …and what it changes was already its own: no taking over a Secret by relabelling it.
          expression: `request.operation != 'UPDATE' || (${ours("oldObject")}) || (${ownedByDevice("oldObject")})`,
          message: "the devicepass operator may change only Secrets that are already its own",
        },
      ],
    },
  );
}

export function configMapWritePolicy(
  scope: Construct,
  { release, labels: objectLabels }: { release: Release; labels: Record<string, string> },
): void {
  operatorWritePolicy(
    scope,
    "configmap-",
    { release, labels: objectLabels },
    {
      name: `${release.name}-configmap-writes`,
      resource: "configmaps",
      validations: [
        {
          // What it writes, or deletes, is an invitation record or the autoconfig ConfigMap…
          expression: oursAmong("variables.target", configMapComponents),
          message: `the devicepass operator may write only its own ConfigMaps (labels ${labels.managedBy}=${managedByValue} and ${labels.component} ${configMapComponents.join(" or ")})`,
        },
        {
          // …in its own namespace…
          expression: `request.namespace == '${release.namespace}'`,
          message: `devicepass writes its ConfigMaps only in namespace ${release.namespace}`,
        },
        {
          // …and what it changes was already its own.
          expression: `request.operation != 'UPDATE' || (${oursAmong("oldObject", configMapComponents)})`,
          message: "the devicepass operator may change only ConfigMaps that are already its own",
        },
      ],
    },
  );
}

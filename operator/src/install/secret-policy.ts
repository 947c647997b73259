// A ValidatingAdmissionPolicy on the operator's own Secret writes: RBAC cannot grant Secrets by
// label, so an operator that may write Secrets in a namespace could write any of them. This
// policy lets its ServiceAccount create, change and delete only devicepass's own Secrets (a
// device's credentials, owned by its MailDevice; the database shards; its seal key), wherever it
// holds the RBAC, all namespaces included.
import { ApiObject } from "cdk8s";
import type { Construct } from "constructs";
import { components, labels, managedByValue } from "../api/names.ts";
import type { Release } from "./wiring.ts";

const ours = (object: string) =>
  `has(${object}.metadata.labels) && '${labels.managedBy}' in ${object}.metadata.labels && ` +
  `${object}.metadata.labels['${labels.managedBy}'] == '${managedByValue}' && ` +
  `'${labels.component}' in ${object}.metadata.labels && ` +
  `${object}.metadata.labels['${labels.component}'] in ['${components.credentials}', '${components.passdb}', '${components.sealKey}']`;
const ownedByDevice = (object: string) =>
  `has(${object}.metadata.ownerReferences) && ${object}.metadata.ownerReferences.exists(r, r.kind == 'MailDevice' && has(r.controller) && r.controller)`;

export function secretWritePolicy(
  scope: Construct,
  {
    release,
    labels: objectLabels,
    passdbNamespace,
  }: { release: Release; labels: Record<string, string>; passdbNamespace: string },
): void {
  const name = `${release.name}-secret-writes`;
  const serviceAccount = `system:serviceaccount:${release.namespace}:${release.name}`;
  new ApiObject(scope, "policy", {
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
            resources: ["secrets"],
          },
        ],
      },
      matchConditions: [
        { name: "the-devicepass-operator", expression: `request.userInfo.username == '${serviceAccount}'` },
      ],
      variables: [{ name: "target", expression: "request.operation == 'DELETE' ? oldObject : object" }],
      validations: [
        {
          // What it writes, or deletes, must be one of its own kinds of Secret…
          expression: ours("variables.target"),
          message: `the devicepass operator may write only its own Secrets (labels ${labels.managedBy}=${managedByValue} and ${labels.component} credentials, passdb or seal-key)`,
        },
        {
          // …a credential Secret belongs to a MailDevice…
          expression: `variables.target.metadata.labels['${labels.component}'] != '${components.credentials}' || ${ownedByDevice("variables.target")}`,
          message: "a devicepass credential Secret must be owned by its MailDevice",
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
  });
  new ApiObject(scope, "binding", {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name, labels: objectLabels },
    spec: { policyName: name, validationActions: ["Deny"] },
  });
}

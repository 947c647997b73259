// The admission policies behind `mail.devicepass.io/created-by`: a MutatingAdmissionPolicy writes
// the creator's user name into a new MailDevice, and a ValidatingAdmissionPolicy refuses any other
// value at creation and every later change or removal. Both run in the API server: no webhook.
import { ApiObject, type ApiObjectProps } from "cdk8s";
import { Construct } from "constructs";
import { createdByAnnotation, group, kinds } from "../api/names.ts";
import type { Wiring } from "./wiring.ts";

/** The API versions of MutatingAdmissionPolicy: v1 since Kubernetes 1.36, v1beta1 behind a gate before. */
export const mutatingPolicyApiVersions = ["v1", "v1beta1"] as const;
export type MutatingPolicyApiVersion = (typeof mutatingPolicyApiVersions)[number];

const admissionGroup = "admissionregistration.k8s.io";

/** The name Helm's `.Capabilities.APIVersions.Has` and discovery know the kind by. */
export function mutatingPolicyResource(apiVersion: MutatingPolicyApiVersion): string {
  return `${admissionGroup}/${apiVersion}/MutatingAdmissionPolicy`;
}

const deviceRule = (operations: string[]) => ({
  apiGroups: [group],
  apiVersions: ["*"],
  operations,
  resources: [kinds.mailDevice.plural],
});

// CEL: the annotation of `o` (object or oldObject), or "" when absent; `in` tells absent from "".
const key = JSON.stringify(createdByAnnotation);
const annotationOf = (o: string) =>
  `has(${o}.metadata.annotations) && ${key} in ${o}.metadata.annotations ? ${o}.metadata.annotations[${key}] : ""`;
const hasAnnotation = (o: string) => `has(${o}.metadata.annotations) && ${key} in ${o}.metadata.annotations`;

/** Names of the four objects, prefixed by the release like the chart's other cluster-wide objects. */
export function createdByPolicyNames(release: string): { mutating: string; validating: string } {
  return { mutating: `${release}-created-by`, validating: `${release}-created-by-immutable` };
}

/** The MutatingAdmissionPolicy and its binding, in the given API version. */
export function mutatingCreatedByPolicy(
  release: string,
  apiVersion: MutatingPolicyApiVersion,
  labels: Record<string, string>,
): Record<string, unknown>[] {
  const name = createdByPolicyNames(release).mutating;
  return [
    {
      apiVersion: `${admissionGroup}/${apiVersion}`,
      kind: "MutatingAdmissionPolicy",
      metadata: { name, labels },
      spec: {
        matchConstraints: { resourceRules: [deviceRule(["CREATE"])] },
        // A device is never created without its creator recorded.
        failurePolicy: "Fail",
        // Run again if a later mutation touched the annotation.
        reinvocationPolicy: "IfNeeded",
        mutations: [
          {
            patchType: "ApplyConfiguration",
            applyConfiguration: {
              // Overwrites whatever the request carried: only the API server knows the creator.
              expression: `Object{metadata: Object.metadata{annotations: {${key}: request.userInfo.username}}}`,
            },
          },
        ],
      },
    },
    {
      apiVersion: `${admissionGroup}/${apiVersion}`,
      kind: "MutatingAdmissionPolicyBinding",
      metadata: { name, labels },
      spec: { policyName: name },
    },
  ];
}

/**
 * The ValidatingAdmissionPolicy and its binding (admissionregistration.k8s.io/v1, GA since 1.30).
 * It sees the object after every mutation, so where the mutating policy runs a create always
 * passes; where it does not (no API, or a cluster without the gate), nobody can claim another
 * user's name. An update may not add, change or remove the annotation, whoever sends it: the
 * request's author is refused with a message rather than silently overruled.
 */
export function validatingCreatedByPolicy(
  release: string,
  labels: Record<string, string>,
): Record<string, unknown>[] {
  const name = createdByPolicyNames(release).validating;
  return [
    {
      apiVersion: `${admissionGroup}/v1`,
      kind: "ValidatingAdmissionPolicy",
      metadata: { name, labels },
      spec: {
        matchConstraints: { resourceRules: [deviceRule(["CREATE", "UPDATE"])] },
        failurePolicy: "Fail",
        variables: [
          { name: "createdBy", expression: annotationOf("object") },
          { name: "hasCreatedBy", expression: hasAnnotation("object") },
        ],
        validations: [
          {
            expression: `request.operation != "CREATE" || !variables.hasCreatedBy || variables.createdBy == request.userInfo.username`,
            messageExpression: `"metadata.annotations[${createdByAnnotation}] is written by the API server with the user that creates the MailDevice; " + request.userInfo.username + " may not set it to " + variables.createdBy + ": remove it from the object"`,
            reason: "Forbidden",
          },
          {
            expression: `request.operation != "UPDATE" || (variables.hasCreatedBy == (${hasAnnotation("oldObject")}) && variables.createdBy == (${annotationOf("oldObject")}))`,
            messageExpression: `"metadata.annotations[${createdByAnnotation}] records who created this MailDevice and nobody can set, change or remove it" + ((${hasAnnotation("oldObject")}) ? " (it is " + oldObject.metadata.annotations[${key}] + "): leave it out of applied files and patches, or keep this value in a file that carries it" : " (this device has none): leave it out of applied files and patches")`,
            reason: "Forbidden",
          },
        ],
      },
    },
    {
      apiVersion: `${admissionGroup}/v1`,
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name, labels },
      spec: { policyName: name, validationActions: ["Deny"] },
    },
  ];
}

export interface CreatedByAdmissionProps {
  wiring: Wiring;
  labels: Record<string, string>;
}

/**
 * The policies as one part of the install. The chart renders the mutating policy in the newest
 * version the cluster serves (v1, else v1beta1 where the MutatingAdmissionPolicy gate is on, else
 * none: the CREATED BY column then stays empty); the plain manifest holds the v1 form.
 */
export class CreatedByAdmission extends Construct {
  constructor(scope: Construct, id: string, props: CreatedByAdmissionProps) {
    super(scope, id);
    const { wiring: w, labels } = props;
    const release = w.release.name;
    const has = (apiVersion: MutatingPolicyApiVersion) =>
      `$.Capabilities.APIVersions.Has ${JSON.stringify(mutatingPolicyResource(apiVersion))}`;
    const objects = (list: Record<string, unknown>[]) => () => {
      for (const object of list) {
        const { apiVersion, kind } = object as { apiVersion: string; kind: string };
        new ApiObject(this, `${kind}-${apiVersion.split("/")[1]}`, object as unknown as ApiObjectProps);
      }
    };
    w.objectsWhen(this, () => true, has("v1"), objects(mutatingCreatedByPolicy(release, "v1", labels)));
    w.objectsWhen(
      this,
      () => false,
      `and (not (${has("v1")})) (${has("v1beta1")})`,
      objects(mutatingCreatedByPolicy(release, "v1beta1", labels)),
    );
    objects(validatingCreatedByPolicy(release, labels))();
  }
}

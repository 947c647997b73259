// Derives the CustomResourceDefinitions from the zod schemas; `npm run generate` writes them to crds/.
import { z } from "zod";
import { stringify } from "yaml";
import { createdByAnnotation, group, kinds, rotateAnnotation, version } from "./names.ts";
import {
  mailAddressSpecSchema,
  mailAddressStatusSchema,
  mailDeviceSpecSchema,
  mailDeviceStatusSchema,
  mailDomainSpecSchema,
  mailDomainStatusSchema,
} from "./schemas.ts";

type JsonSchema = Record<string, unknown>;

/** zod's OpenAPI 3.0 output, made structural: Kubernetes rejects `additionalProperties: false` beside properties. */
export function toStructuralSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { io: "input", target: "openapi-3.0" }) as JsonSchema;
  const clean = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(clean);
    if (node === null || typeof node !== "object") return node;
    const out: JsonSchema = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === "$schema" || (key === "additionalProperties" && value === false)) continue;
      out[key] =
        key === "x-kubernetes-validations" || key === "enum" || key === "default" ? value : clean(value);
    }
    return out;
  };
  return clean(json) as JsonSchema;
}

interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description: string;
  priority?: number;
}

const readyColumn: PrinterColumn = {
  name: "Ready",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: "Whether the mail server accepts the credentials.",
};
const ageColumn: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since creation.",
};

function customResourceDefinition(
  names: (typeof kinds)[keyof typeof kinds],
  description: string,
  spec: z.ZodType,
  status: z.ZodType,
  columns: PrinterColumn[],
  options: { scope?: "Namespaced" | "Cluster"; rootValidations?: { rule: string; message: string }[] } = {},
): JsonSchema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${names.plural}.${group}` },
    spec: {
      group,
      scope: options.scope ?? "Namespaced",
      names: {
        kind: names.kind,
        listKind: `${names.kind}List`,
        plural: names.plural,
        singular: names.singular,
        shortNames: [...names.shortNames],
        categories: ["devicepass"],
      },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: columns,
          schema: {
            openAPIV3Schema: {
              type: "object",
              description,
              required: ["spec"],
              ...(options.rootValidations ? { "x-kubernetes-validations": options.rootValidations } : {}),
              properties: {
                apiVersion: { type: "string", description: "Versioned schema of this object." },
                kind: { type: "string", description: "Kind of this object." },
                metadata: { type: "object" },
                spec: toStructuralSchema(spec),
                status: toStructuralSchema(status),
              },
            },
          },
        },
      ],
    },
  };
}

export const mailAddressCrd = customResourceDefinition(
  kinds.mailAddress,
  "MailAddress is a mailbox whose devices each get their own password.",
  mailAddressSpecSchema,
  mailAddressStatusSchema,
  [
    { name: "Address", type: "string", jsonPath: ".spec.address", description: "The mail address." },
    { name: "Devices", type: "integer", jsonPath: ".status.devices", description: "Number of devices." },
    readyColumn,
    ageColumn,
  ],
);

/** A JSONPath to an annotation, as printer columns take it (dots in the key escaped). */
function annotationPath(key: string): string {
  return `.metadata.annotations.${key.replaceAll(".", "\\.")}`;
}

// kubectl explain cannot describe annotations (metadata is ObjectMeta), so the kind's own
// description names the two a user meets.
export const mailDeviceCrd = customResourceDefinition(
  kinds.mailDevice,
  `MailDevice is one device of a mail address, with its own generated password in a Secret. ` +
    `Annotations: ${rotateAnnotation} - a changed value regenerates the password once (never remove it); ` +
    `${createdByAnnotation} - the user that created the device, set by the API server at creation ` +
    `(request.userInfo.username, by devicepass's MutatingAdmissionPolicy where the cluster serves it) ` +
    `and refused if anyone sets, changes or removes it; for display only.`,
  mailDeviceSpecSchema,
  mailDeviceStatusSchema,
  [
    { name: "Address", type: "string", jsonPath: ".status.address", description: "The mail address." },
    {
      name: "Display Name",
      type: "string",
      jsonPath: ".spec.displayName",
      description: "Name of the device.",
    },
    {
      name: "User",
      type: "string",
      jsonPath: ".spec.user.name",
      description: "The person the device belongs to.",
    },
    {
      name: "Created By",
      type: "string",
      jsonPath: annotationPath(createdByAnnotation),
      description: "The user that created the device, as the API server saw it.",
    },
    readyColumn,
    {
      name: "Last Used",
      type: "date",
      jsonPath: ".status.lastUsedAt",
      description:
        "The device's last login at the mail server (to the operator's precision, 5 minutes by default).",
    },
    {
      name: "Rotated",
      type: "date",
      jsonPath: ".status.passwordGeneratedAt",
      description: "When the password was generated.",
    },
    ageColumn,
    { name: "Icon", type: "string", jsonPath: ".spec.icon", description: "Icon of the device.", priority: 1 },
    {
      name: "Secret",
      type: "string",
      jsonPath: ".status.secretName",
      description: "Credential Secret.",
      priority: 1,
    },
    {
      name: "Invitation",
      type: "string",
      jsonPath: ".status.invitation.state",
      description: "With delivery Invitation: Pending, Sent, Redeemed or Expired.",
      priority: 1,
    },
  ],
);

export const mailDomainCrd = customResourceDefinition(
  kinds.mailDomain,
  "MailDomain, named after a mail domain such as example.com, says which namespaces may hold its addresses. Cluster administrators own it.",
  mailDomainSpecSchema,
  mailDomainStatusSchema,
  [
    {
      name: "Addresses",
      type: "integer",
      jsonPath: ".status.addresses",
      description: "Addresses in admitted namespaces.",
    },
    readyColumn,
    ageColumn,
  ],
  {
    scope: "Cluster",
    rootValidations: [
      {
        rule: "self.metadata.name.matches('^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$')",
        message: "metadata.name must be a lower-case mail domain such as example.com",
      },
    ],
  },
);

/** The files of crds/, by name: what `npm run generate` writes and the drift test compares. */
export function crdFiles(): Record<string, string> {
  const header = "# Generated by `npm run generate` from operator/src/api/schemas.ts. Do not edit.\n";
  return {
    [`${group}_${kinds.mailAddress.plural}.yaml`]: header + stringify(mailAddressCrd),
    [`${group}_${kinds.mailDevice.plural}.yaml`]: header + stringify(mailDeviceCrd),
    [`${group}_${kinds.mailDomain.plural}.yaml`]: header + stringify(mailDomainCrd),
  };
}

// zod schemas of MailAddress and MailDevice: the one source of the TypeScript types, of runtime
// parsing of what the API server returns, and of the CRDs' openAPIV3Schema (see crd.ts).
import { z } from "zod";
import { apiVersion, kinds } from "./names.ts";
import { durationPattern } from "./duration.ts";
import { passwordLengthBounds } from "../credentials/password.ts";

const immutable = (what: string) => ({ rule: "self == oldSelf", message: `${what} is immutable` });

// A dot-atom local part of the characters Dovecot accepts in a user name by default
// (auth_username_chars: letters, digits, ".", "-", "_"), so no doveadm wildcard ("*", "?") and
// nothing a mail server could not serve; and a dotted DNS domain. Matched case-insensitively.
export const mailAddressPattern =
  "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";
export const mailAddressRegExp = new RegExp(mailAddressPattern);
const mailAddressRule = {
  rule: `self.matches("${mailAddressPattern.replaceAll("\\", "\\\\")}")`,
  message:
    "must be a mail address such as alice@example.com whose local part holds only letters, digits, '.', '-' and '_' (what Dovecot accepts in a user name)",
};
/** Any contact address, for spec.user.email: it is only shown and mailed to, never a login. */
const contactAddressRule = {
  rule: `self.matches("^[^@\\\\s]+@[^@\\\\s]+$")`,
  message: "must be a mail address such as bob@example.com",
};

const dnsSubdomainPattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

export const securityValues = ["SSL/TLS", "STARTTLS"] as const;

const endpoint = (protocol: string) =>
  z
    .object({
      host: z
        .string()
        .min(1)
        .max(253)
        .meta({ description: `Host name of the ${protocol} server.` }),
      port: z
        .number()
        .int()
        .min(1)
        .max(65535)
        .meta({ description: `TCP port of the ${protocol} server.` }),
      security: z
        .enum(securityValues)
        .meta({ description: "Transport security: SSL/TLS (implicit TLS) or STARTTLS." }),
    })
    .meta({ description: `Recommended ${protocol} settings for mail clients.` });

export const clientSettingsSchema = z
  .object({
    imap: endpoint("IMAP").optional(),
    pop3: endpoint("POP3").optional(),
    smtp: endpoint("SMTP").optional(),
  })
  .meta({
    description:
      "Recommended IMAP, POP3 and SMTP settings for mail clients, copied into each device Secret. Absent protocols take the operator-wide default.",
  });
export type ClientSettings = z.infer<typeof clientSettingsSchema>;

export const conditionSchema = z
  .object({
    type: z.string().meta({ description: "Type of condition, e.g. Ready." }),
    status: z.enum(["True", "False", "Unknown"]).meta({ description: "True, False or Unknown." }),
    reason: z.string().meta({ description: "CamelCase reason for the last transition." }),
    message: z.string().meta({ description: "Human-readable sentence about the transition." }),
    observedGeneration: z
      .number()
      .int()
      .optional()
      .meta({ description: "Generation the condition was set for." }),
    lastTransitionTime: z
      .string()
      .meta({ description: "When the status last changed.", format: "date-time" }),
  })
  .meta({ description: "A metav1.Condition." });
export type Condition = z.infer<typeof conditionSchema>;

const observedGeneration = z
  .number()
  .int()
  .optional()
  .meta({ description: "Generation this status describes." });

const conditions = z
  .array(conditionSchema)
  .optional()
  .meta({
    description: "Current state: the Ready condition and its reason.",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
  });

export const mailAddressSpecSchema = z
  .object({
    address: z
      .string()
      .min(3)
      .max(254)
      .meta({
        description: "The mail address, e.g. alice@example.com. Compared case-insensitively; immutable.",
        "x-kubernetes-validations": [mailAddressRule, immutable("address")],
      }),
    clientSettings: clientSettingsSchema.optional(),
  })
  .meta({ description: "A mailbox whose devices get their own passwords." });

export const mailAddressStatusSchema = z
  .object({
    observedGeneration,
    conditions,
    devices: z.number().int().optional().meta({ description: "Number of MailDevices of this address." }),
    maxDevices: z.number().int().optional().meta({
      description:
        "How many devices this address may have (its MailDomain's devicePolicy.maxDevicesPerAddress); devices beyond it, the newest first, get no password.",
    }),
    readyDevices: z
      .number()
      .int()
      .optional()
      .meta({ description: "Number of those devices that are Ready." }),
  })
  .meta({ description: "Observed state of the MailAddress." });

/** How a device's password reaches its user (spec.delivery). */
export const deliveryValues = ["Secret", "Invitation"] as const;
export type Delivery = (typeof deliveryValues)[number];
export const defaultInvitationValidFor = "720h";
export const maxInvitationValidFor = "2160h";
/** Where an invitation is e-mailed: one plain address (no list, no display name, no quotes). */
export const invitationEmailPattern =
  "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$";
const invitationEmailRule = {
  rule: `self.matches("${invitationEmailPattern.replaceAll("\\", "\\\\")}")`,
  message: "must be one mail address such as bob@example.com",
};
export const invitationStates = ["Pending", "Sent", "Redeemed", "Expired"] as const;
export type InvitationState = (typeof invitationStates)[number];

export const mailDeviceIcons = ["phone", "tablet", "laptop", "desktop", "watch", "server", "other"] as const;
export const mailProtocols = ["imap", "pop3", "smtp"] as const;
export type MailProtocol = (typeof mailProtocols)[number];

export const mailDeviceSpecSchema = z
  .object({
    address: z
      .string()
      .min(1)
      .max(253)
      .meta({
        description: "Name of the MailAddress, in the same namespace, this device logs in as. Immutable.",
        "x-kubernetes-validations": [immutable("address")],
      }),
    displayName: z
      .string()
      .min(1)
      .max(64)
      .meta({ description: "Name shown for the device, 1 to 64 characters." }),
    icon: z.enum(mailDeviceIcons).default("other").meta({ description: "Icon shown for the device." }),
    user: z
      .object({
        name: z.string().min(1).max(128).meta({ description: "Name of the person." }),
        email: z
          .string()
          .max(254)
          .meta({
            description: "Contact address of the person.",
            "x-kubernetes-validations": [contactAddressRule],
          }),
      })
      .optional()
      .meta({ description: "The person the device belongs to; absent means no user." }),
    protocols: z.array(z.enum(mailProtocols)).min(1).max(3).optional().meta({
      description: "Protocols the password is valid for: imap, pop3, smtp. Default: all three.",
      "x-kubernetes-list-type": "set",
    }),
    secretName: z.string().min(1).max(253).optional().meta({
      description: "Name of the credential Secret. Default: <device name>-mail-credentials. Immutable.",
      pattern: dnsSubdomainPattern,
    }),
    delivery: z
      .enum(deliveryValues)
      .optional()
      .meta({
        // The API server fills in the default; parsed objects may lack it (written before the field).
        default: "Secret",
        description:
          "How the password reaches the device's user. Secret: devicepass generates it into the credential Secret. Invitation: devicepass writes no credential Secret; the person opens an invitation link (in Secret <device name>-invitation, key url, and e-mailed to spec.invitation.email or spec.user.email), sees the password once in the portal, and only its argon2id hash reaches the cluster. Immutable: to change it, delete the device and create it again (which revokes its password).",
        "x-kubernetes-validations": [immutable("delivery")],
      }),
    invitation: z
      .object({
        email: z
          .string()
          .max(254)
          .optional()
          .meta({
            description:
              "Where the invitation link is e-mailed. Default: spec.user.email; with neither, the link is only in Secret <device name>-invitation.",
            "x-kubernetes-validations": [invitationEmailRule],
          }),
        validFor: z
          .string()
          .max(32)
          .regex(new RegExp(durationPattern))
          .optional()
          .meta({
            default: defaultInvitationValidFor,
            description: `How long the link can be redeemed, a duration such as 72h or 30m (default ${defaultInvitationValidFor}, 30 days; at most ${maxInvitationValidFor}). A change applies to the next invitation.`,
            "x-kubernetes-validations": [
              {
                rule: `duration(self) > duration('0s') && duration(self) <= duration('${maxInvitationValidFor}')`,
                message: `must be a duration above 0s and at most ${maxInvitationValidFor} (90 days)`,
              },
            ],
          }),
        language: z
          .string()
          .max(35)
          .regex(/^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/)
          .optional()
          .meta({
            description:
              "The person's language as a BCP 47 tag, e.g. es or en-GB: the invitation e-mail is written in it where devicepass has it (English and Spanish), in English otherwise. The portal's pages follow the browser's language.",
          }),
      })
      .optional()
      .meta({ description: "The invitation, with delivery Invitation." }),
  })
  .meta({
    description: "A device of a mail address with its own password.",
    "x-kubernetes-validations": [
      {
        rule: "has(self.secretName) == has(oldSelf.secretName) && (!has(self.secretName) || self.secretName == oldSelf.secretName)",
        message: "secretName is immutable",
      },
      {
        rule: "!has(self.invitation) || (has(self.delivery) && self.delivery == 'Invitation')",
        message: "spec.invitation applies only with delivery: Invitation",
      },
      {
        rule: "!has(self.delivery) || self.delivery != 'Invitation' || !has(self.secretName)",
        message: "spec.secretName names the credential Secret, which delivery: Invitation never writes",
      },
    ],
  });

export const mailDeviceStatusSchema = z
  .object({
    observedGeneration,
    conditions,
    address: z.string().optional().meta({ description: "The mail address the device logs in as." }),
    secretName: z
      .string()
      .optional()
      .meta({ description: "Name of the Secret holding the device's password." }),
    passwordGeneratedAt: z
      .string()
      .optional()
      .meta({ description: "When the current password was generated.", format: "date-time" }),
    lastUsedAt: z.string().optional().meta({
      description:
        "The device's last successful login at the mail server, to the operator's --last-used-precision-seconds (5 minutes by default), written at most once per interval, so that logins never cause a write storm.",
      format: "date-time",
    }),
    rotationCount: z
      .number()
      .int()
      .optional()
      .meta({ description: "How many times the password was regenerated after the first one." }),
    lastRotateValue: z
      .string()
      .optional()
      .meta({ description: "The device's mail.devicepass.io/rotate value last acted on." }),
    lastAddressRotateValue: z
      .string()
      .optional()
      .meta({ description: "The address's mail.devicepass.io/rotate value last acted on." }),
    invitation: z
      .object({
        state: z.enum(invitationStates).meta({
          description:
            "Pending: the link is in Secret <device name>-invitation (not e-mailed, or not yet); Sent: the link was e-mailed; Redeemed: the person saw the password, and its hash is the device's; Expired: validFor passed first (rotate the device for a new invitation).",
        }),
        expiresAt: z
          .string()
          .optional()
          .meta({ description: "Until when the link can be redeemed.", format: "date-time" }),
        sentAt: z
          .string()
          .optional()
          .meta({ description: "When the link was e-mailed.", format: "date-time" }),
        redeemedAt: z.string().optional().meta({
          description: "When the person opened the link and the password was generated.",
          format: "date-time",
        }),
      })
      .optional()
      .meta({ description: "The device's current invitation, with delivery Invitation." }),
    suspendedAt: z.string().optional().meta({
      description:
        "When a policy change (MailDomain, namespace labels, protocols, device limit) stopped the mail server accepting this device's password. Its Secret is kept for the suspension grace period, so a re-admission within it publishes the same password again; after it, the Secret is deleted.",
      format: "date-time",
    }),
  })
  .meta({ description: "Observed state of the MailDevice." });

/** Devices an address may have when its MailDomain sets no devicePolicy.maxDevicesPerAddress. */
export const defaultMaxDevicesPerAddress = 20;
/** Characters of a reservation's local-part glob: a lower-case local part with `*` and `?`. */
export const localPartGlobPattern = "^[a-z0-9._*?-]{1,64}$";

const labelSelectorSchema = z
  .object({
    matchLabels: z
      .record(z.string(), z.string())
      .optional()
      .meta({ description: "Labels a namespace must all have, with these values." }),
    matchExpressions: z
      .array(
        z
          .object({
            key: z.string().min(1).meta({ description: "The label key." }),
            operator: z
              .enum(["In", "NotIn", "Exists", "DoesNotExist"])
              .meta({ description: "How the label relates to the values." }),
            values: z
              .array(z.string())
              .optional()
              .meta({ description: "Values for In and NotIn; empty otherwise." }),
          })
          .meta({ description: "A label selector requirement." }),
      )
      .optional()
      .meta({ description: "Requirements a namespace's labels must all meet." }),
  })
  .meta({ description: "A Kubernetes label selector; an empty selector admits every namespace." });
export type LabelSelector = z.infer<typeof labelSelectorSchema>;

export const mailDomainSpecSchema = z
  .object({
    namespaces: z.array(z.string().min(1).max(63)).optional().meta({
      description: "Names of the namespaces that may hold addresses of this domain.",
      "x-kubernetes-list-type": "set",
    }),
    namespaceSelector: labelSelectorSchema.optional().meta({
      description: "Namespaces whose labels match this label selector may hold addresses of the domain.",
    }),
    reservations: z
      .array(
        z
          .object({
            namespace: z
              .string()
              .min(1)
              .max(63)
              .meta({ description: "The namespace that alone may hold these local parts." }),
            localParts: z
              .array(z.string().meta({ pattern: localPartGlobPattern }))
              .min(1)
              .max(100)
              .meta({
                description:
                  "Local parts (before the @), lower-case, with the globs * (any run of characters) and ? (one character).",
                "x-kubernetes-list-type": "set",
              }),
          })
          .meta({ description: "Local parts of the domain reserved for one namespace." }),
      )
      .max(100)
      .optional()
      .meta({
        description:
          "Gives local parts of the domain to namespaces: a reserved address issues credentials only in its namespace, whoever claimed it first. The first matching reservation applies. Without one, the first admitted claim of an address owns it.",
      }),
    clientSettings: clientSettingsSchema.optional(),
    devicePolicy: z
      .object({
        passwordLength: z
          .number()
          .int()
          .min(passwordLengthBounds.min)
          .max(passwordLengthBounds.max)
          .optional()
          .meta({
            description: `Length of generated passwords for devices of this domain (${passwordLengthBounds.min} to ${passwordLengthBounds.max}).`,
          }),
        maxDevicesPerAddress: z.number().int().min(1).max(100).optional().meta({
          description:
            "How many devices each address of the domain may have (1 to 100, default 20). Devices beyond it, the newest first, get no password (DeviceLimitExceeded): a limit on what one address costs the mail server's logins and the password database.",
        }),
        allowedProtocols: z.array(z.enum(mailProtocols)).min(1).max(3).optional().meta({
          description:
            "Protocols devices of this domain may use; a device asking for another is refused. Default: all.",
          "x-kubernetes-list-type": "set",
        }),
      })
      .optional()
      .meta({ description: "Rules for the devices of this domain's addresses." }),
  })
  .meta({
    description:
      "Which namespaces may hold addresses of the domain (spec.namespaces or spec.namespaceSelector, either one admitting) and the defaults they inherit.",
  });

export const mailDomainStatusSchema = z
  .object({
    observedGeneration,
    conditions,
    addresses: z
      .number()
      .int()
      .optional()
      .meta({ description: "Number of MailAddresses of the domain in admitted namespaces." }),
  })
  .meta({ description: "Observed state of the MailDomain." });

const ownerReferenceSchema = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});
export type OwnerReference = z.infer<typeof ownerReferenceSchema>;

export const objectMetaSchema = z.looseObject({
  name: z.string(),
  namespace: z.string().optional(),
  uid: z.string(),
  resourceVersion: z.string(),
  generation: z.number().int().optional(),
  creationTimestamp: z.string(),
  deletionTimestamp: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  finalizers: z.array(z.string()).optional(),
  ownerReferences: z.array(ownerReferenceSchema).optional(),
});
export type ObjectMeta = z.infer<typeof objectMetaSchema>;

export const mailAddressSchema = z.looseObject({
  apiVersion: z.literal(apiVersion),
  kind: z.literal(kinds.mailAddress.kind),
  metadata: objectMetaSchema,
  spec: mailAddressSpecSchema,
  status: mailAddressStatusSchema.optional(),
});
export type MailAddress = z.infer<typeof mailAddressSchema>;
export type MailAddressStatus = z.infer<typeof mailAddressStatusSchema>;

export const mailDeviceSchema = z.looseObject({
  apiVersion: z.literal(apiVersion),
  kind: z.literal(kinds.mailDevice.kind),
  metadata: objectMetaSchema,
  spec: mailDeviceSpecSchema,
  status: mailDeviceStatusSchema.optional(),
});
export type MailDevice = z.infer<typeof mailDeviceSchema>;
export type MailDeviceStatus = z.infer<typeof mailDeviceStatusSchema>;
export type MailDeviceSpec = z.infer<typeof mailDeviceSpecSchema>;

export const mailDomainSchema = z.looseObject({
  apiVersion: z.literal(apiVersion),
  kind: z.literal(kinds.mailDomain.kind),
  metadata: objectMetaSchema,
  spec: mailDomainSpecSchema,
  status: mailDomainStatusSchema.optional(),
});
export type MailDomain = z.infer<typeof mailDomainSchema>;
export type MailDomainStatus = z.infer<typeof mailDomainStatusSchema>;

/** What users write (defaults not yet applied): the input of the cdk8s constructs. */
export type MailAddressSpecInput = z.input<typeof mailAddressSpecSchema>;
export type MailDeviceSpecInput = z.input<typeof mailDeviceSpecSchema>;
export type MailDomainSpecInput = z.input<typeof mailDomainSpecSchema>;

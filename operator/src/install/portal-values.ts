// The chart values of the invitation portal (`devicepass portal`), a part of values.ts.
import { z } from "zod";

const kubernetesName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);

export const portalValuesSchema = z
  .strictObject({
    enabled: z.boolean().default(false).meta({
      description:
        "Run the invitation portal (devicepass portal): the pages of invitation links and mail client autoconfiguration. It faces the internet; it may only get and update ConfigMaps in the release namespace.",
    }),
    publicUrl: z
      .union([z.url({ protocol: /^https?$/ }), z.literal("")])
      .default("")
      .meta({
        description:
          "The portal's public origin, e.g. https://portal.example.com (links, QR codes and the form's origin check); required with enabled.",
      }),
    replicas: z.number().int().min(1).default(2).meta({
      description:
        "Portal replicas; any number redeem a link exactly once (optimistic concurrency on the record).",
    }),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .default(8080)
      .meta({ description: "The portal container's HTTP port." }),
    setupMinutes: z.number().int().min(1).max(60).default(10).meta({
      description:
        "Minutes the phone setup page and the .mobileconfig stay available after the password was shown.",
    }),
    forwardedForHops: z.number().int().min(0).max(10).default(0).meta({
      description:
        "Trusted proxies in front that append to X-Forwarded-For (an Ingress controller: 1), for per-client rate limiting; 0 uses the peer address.",
    }),
    service: z
      .strictObject({
        port: z
          .number()
          .int()
          .min(1)
          .max(65535)
          .default(80)
          .meta({ description: "Port of the Service <release>-portal." }),
      })
      .prefault({})
      .meta({ description: "The portal's ClusterIP Service." }),
    ingress: z
      .strictObject({
        enabled: z.boolean().default(false).meta({ description: "An Ingress for the portal." }),
        className: z
          .string()
          .default("")
          .meta({ description: "ingressClassName; empty: the cluster's default." }),
        host: z
          .string()
          .default("")
          .meta({ description: "Host name of the Ingress rule, e.g. portal.example.com." }),
        tlsSecret: z
          .union([kubernetesName, z.literal("")])
          .default("")
          .meta({ description: "Secret with the TLS certificate for host; empty: no TLS section." }),
        annotations: z
          .record(z.string(), z.string())
          .default({})
          .meta({ description: "Annotations of the Ingress." }),
      })
      .prefault({})
      .meta({ description: "How the portal is reached from the internet." }),
    admissionPolicy: z
      .strictObject({
        enabled: z.boolean().default(true).meta({
          description:
            "A ValidatingAdmissionPolicy (Kubernetes 1.30+) that lets the portal's ServiceAccount update nothing but the redemption of a pending invitation record, as defence in depth under its namespace-wide ConfigMap update right.",
        }),
      })
      .prefault({})
      .meta({ description: "Admission control of the portal's writes." }),
    resources: z
      .record(z.string(), z.unknown())
      .default({ requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } })
      .meta({
        description: "Portal container resources; each redemption hashes once with the argon2id parameters.",
      }),
  })
  .prefault({})
  .meta({ description: "The invitation portal." });

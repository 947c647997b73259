// The invitation portal's install objects (with portal.enabled): its ServiceAccount, Role and
// RoleBinding in the release namespace, the admission policy that narrows its writes, its
// Deployment (the operator's image, args `portal …`), Service, optional Ingress and a
// PodDisruptionBudget. One child construct of DevicepassInstall: templates/portal.yaml.
import { ApiObject, JsonPatch } from "cdk8s";
import { Construct } from "constructs";
import { invitationNames } from "../api/names.ts";
import { imageOf, imageUser as uid, spreadOverNodes } from "./pod.ts";
import { portalAdmissionPolicy, portalRules } from "./portal-rbac.ts";
import { appVersion } from "./version.ts";
import type { Values } from "./values.ts";
import type { Wiring } from "./wiring.ts";

export interface PortalInstallProps {
  wiring: Wiring;
  /** Labels of every object (the install's, Helm's included). */
  labels: Record<string, string>;
}

export class PortalInstall extends Construct {
  constructor(scope: Construct, id: string, props: PortalInstallProps) {
    super(scope, id);
    const w = props.wiring;
    const enabled = (v: Values) => v.portal.enabled;
    const enabledExpr = "$.Values.portal.enabled";
    w.objectsWhen(this, enabled, enabledExpr, () => this.objects(w, props.labels));
  }

  private objects(w: Wiring, labels: Record<string, string>): void {
    const { name: release, namespace } = w.release;
    const name = `${release}-portal`;
    const selectorLabels = {
      "app.kubernetes.io/name": "devicepass-portal",
      "app.kubernetes.io/instance": release,
    };
    const objectLabels = { ...labels, ...selectorLabels, "app.kubernetes.io/component": "portal" };
    const podLabels = {
      ...selectorLabels,
      "app.kubernetes.io/component": "portal",
      "app.kubernetes.io/version": w.helm ? w.computed(() => appVersion, "$.Chart.AppVersion") : appVersion,
    };
    const metadata = { name, namespace, labels: objectLabels };

    new ApiObject(this, "serviceaccount", {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata,
      automountServiceAccountToken: false,
    });
    new ApiObject(this, "role", {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata,
      rules: portalRules(invitationNames.autoconfigConfigMap),
    });
    new ApiObject(this, "rolebinding", {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name, namespace }],
    });
    w.objectsWhen(
      this,
      (v) => v.portal.admissionPolicy.enabled,
      "$.Values.portal.admissionPolicy.enabled",
      () => {
        const [policy, binding] = portalAdmissionPolicy({
          name: `${release}-portal-${namespace}`,
          namespace,
          serviceAccount: name,
          labels: objectLabels,
        });
        new ApiObject(this, "admission-policy", policy as { apiVersion: string; kind: string });
        new ApiObject(this, "admission-policy-binding", binding as { apiVersion: string; kind: string });
      },
    );

    const probe = (path: string, periodSeconds: number) => ({
      httpGet: { path, port: "http" },
      periodSeconds,
      timeoutSeconds: 2,
      failureThreshold: 3,
    });
    new ApiObject(this, "deployment", {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata,
      spec: {
        replicas: w.value((v) => v.portal.replicas),
        selector: { matchLabels: selectorLabels },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        template: {
          metadata: { labels: podLabels },
          spec: {
            serviceAccountName: name,
            automountServiceAccountToken: true,
            terminationGracePeriodSeconds: 15,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: uid,
              runAsGroup: uid,
              seccompProfile: { type: "RuntimeDefault" },
            },
            containers: [
              {
                name: "portal",
                image: imageOf(w),
                imagePullPolicy: w.value((v) => v.image.pullPolicy),
                args: [
                  "portal",
                  `--namespace=${namespace}`,
                  `--public-url=${w.computed((v) => v.portal.publicUrl, 'required "portal.publicUrl is required with portal.enabled" $.Values.portal.publicUrl')}`,
                  `--listen=:${w.value((v) => v.portal.port)}`,
                  `--setup-minutes=${w.value((v) => v.portal.setupMinutes)}`,
                  `--forwarded-for-hops=${w.value((v) => v.portal.forwardedForHops)}`,
                  `--log-level=${w.value((v) => v.logLevel)}`,
                ],
                ports: [{ name: "http", containerPort: w.value((v) => v.portal.port), protocol: "TCP" }],
                livenessProbe: probe("/healthz", 10),
                readinessProbe: probe("/readyz", 5),
                resources: w.value((v) => v.portal.resources),
                securityContext: {
                  runAsNonRoot: true,
                  runAsUser: uid,
                  runAsGroup: uid,
                  readOnlyRootFilesystem: true,
                  allowPrivilegeEscalation: false,
                  privileged: false,
                  capabilities: { drop: ["ALL"] },
                },
                volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
              },
            ],
            volumes: [{ name: "tmp", emptyDir: { sizeLimit: "16Mi" } }],
            imagePullSecrets: w.each(
              (v) => v.imagePullSecrets,
              (secret) => ({ name: secret }),
            ),
            affinity: spreadOverNodes(selectorLabels),
          },
        },
      },
    });
    new ApiObject(this, "service", {
      apiVersion: "v1",
      kind: "Service",
      metadata,
      spec: {
        type: "ClusterIP",
        selector: selectorLabels,
        ports: [
          { name: "http", port: w.value((v) => v.portal.service.port), targetPort: "http", protocol: "TCP" },
        ],
      },
    });
    w.objectsWhen(
      this,
      (v) => v.portal.replicas > 1,
      "gt (int $.Values.portal.replicas) 1",
      () => {
        new ApiObject(this, "pdb", {
          apiVersion: "policy/v1",
          kind: "PodDisruptionBudget",
          metadata,
          spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels } },
        });
      },
    );
    w.objectsWhen(
      this,
      (v) => v.portal.ingress.enabled,
      "$.Values.portal.ingress.enabled",
      () => {
        const host = w.computed(
          (v) => v.portal.ingress.host,
          'required "portal.ingress.host is required with portal.ingress.enabled" $.Values.portal.ingress.host',
        );
        const ingress = new ApiObject(this, "ingress", {
          apiVersion: "networking.k8s.io/v1",
          kind: "Ingress",
          metadata,
          spec: {
            // Empty: no ingressClassName at all (null in the chart), so the cluster's default applies.
            ingressClassName: w.computed(
              (v) => v.portal.ingress.className || undefined,
              "default nil $.Values.portal.ingress.className",
            ),
            rules: [
              {
                host,
                http: {
                  paths: [
                    {
                      path: "/",
                      pathType: "Prefix",
                      backend: { service: { name, port: { name: "http" } } },
                    },
                  ],
                },
              },
            ],
            tls: w.when(
              (v) => v.portal.ingress.tlsSecret !== "",
              "$.Values.portal.ingress.tlsSecret",
              () => ({ hosts: [host], secretName: w.value((v) => v.portal.ingress.tlsSecret) }),
            ),
          },
        });
        // cdk8s reads metadata.annotations as a map; the chart's value goes in whole, after it.
        ingress.addJsonPatch(
          JsonPatch.add(
            "/metadata/annotations",
            w.value((v) => v.portal.ingress.annotations),
          ),
        );
      },
    );
  }
}

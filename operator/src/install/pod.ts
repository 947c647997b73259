// What every devicepass pod of the chart shares (the operator's and the portal's): the image, its
// user, and the spread of replicas over nodes.
import { appVersion } from "./version.ts";
import type { Wiring } from "./wiring.ts";

/** The non-root user and group of the image (see Dockerfile). */
export const imageUser = 65532;

/** The image of every devicepass pod (operator, portal): one repository, the chart's version by default. */
export function imageOf(w: Wiring): string {
  return w.computed(
    (v) => `${v.image.repository}:${v.image.tag || appVersion}`,
    'printf "%s:%s" $.Values.image.repository (default $.Chart.AppVersion $.Values.image.tag)',
  );
}

/** Replicas on different nodes where possible: a node failure then costs a failover, not an outage. */
export function spreadOverNodes(selectorLabels: Record<string, string>) {
  return {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: {
            topologyKey: "kubernetes.io/hostname",
            labelSelector: { matchLabels: selectorLabels },
          },
        },
      ],
    },
  };
}

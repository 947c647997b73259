// Starts the one real control plane that every integration and end-to-end test file of a run shares.
import type { TestProject } from "vitest/node";
import { join } from "node:path";
import { ControlPlane } from "../harness/control-plane.ts";
import { kubectlFor } from "../harness/kubectl.ts";
import { installCreatedByPolicies } from "../harness/admission-policies.ts";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    kubectlPath: string;
    controlPlaneDir: string;
  }
}

async function startPlane(): Promise<ControlPlane> {
  const log = (line: string) => console.log(`[control-plane] ${line}`);
  const plane = await ControlPlane.start({ log });
  log(
    `kube-apiserver ${await plane.serverVersion()} ready in ${(plane.timings.totalMs / 1000).toFixed(1)} s`,
  );
  const crds = join(import.meta.dirname, "..", "..", "crds");
  const kubectl = kubectlFor(plane.binaries.kubectl, plane.kubeconfigPath);
  await kubectl.ok(["apply", "--server-side", "-f", crds]);
  await kubectl.ok(["wait", "--for=condition=Established", "--timeout=60s", "-f", crds]);
  // As the chart installs them: every test runs with mail.devicepass.io/created-by enforced.
  const mutating = await installCreatedByPolicies(kubectl);
  log(`created-by admission policies installed (MutatingAdmissionPolicy ${mutating ?? "not served"})`);
  return plane;
}

// Vitest runs each project's global setup on its own (and may load this module once per project),
// so the plane is shared through globalThis and stopped when the last project tears down.
interface Shared {
  plane: Promise<ControlPlane>;
  users: number;
}
const sharedKey = Symbol.for("devicepass.test.controlPlane");
const registry = globalThis as { [sharedKey]?: Shared };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const shared = (registry[sharedKey] ??= { plane: startPlane(), users: 0 });
  shared.users++;
  const plane = await shared.plane;
  project.provide("kubeconfig", plane.kubeconfigPath);
  project.provide("kubectlPath", plane.binaries.kubectl);
  project.provide("controlPlaneDir", plane.dir);
  return async () => {
    if (--shared.users > 0) return;
    delete registry[sharedKey];
    await plane.stop();
  };
}

// Starts the one real control plane that every integration test file of a run shares.
import type { TestProject } from "vitest/node";
import { ControlPlane } from "../harness/control-plane.ts";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    kubectlPath: string;
    controlPlaneDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string) => console.log(`[control-plane] ${line}`);
  const plane = await ControlPlane.start({ log });
  log(
    `kube-apiserver ${await plane.serverVersion()} ready in ${(plane.timings.totalMs / 1000).toFixed(1)} s`,
  );
  project.provide("kubeconfig", plane.kubeconfigPath);
  project.provide("kubectlPath", plane.binaries.kubectl);
  project.provide("controlPlaneDir", plane.dir);
  return () => plane.stop();
}

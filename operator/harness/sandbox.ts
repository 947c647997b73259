// The sandbox behind `npm start` with no cluster: the embedded control plane with crds/ and the
// created-by admission policies installed and the password database namespace created, for
// trying the user flows by hand.
import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "../src/log.ts";
import { ControlPlane } from "./control-plane.ts";
import { kubectlFor } from "./kubectl.ts";
import { installCreatedByPolicies } from "./admission-policies.ts";

const crdsDir = join(import.meta.dirname, "..", "..", "crds");

export interface Sandbox {
  kubeconfigPath: string;
  kubectlDir: string;
  server: string;
  version: string;
  stop(): Promise<void>;
}

export async function startSandbox(log: Logger, passdbNamespace: string): Promise<Sandbox> {
  log.info("starting the sandbox control plane (the first run builds Kubernetes from source: minutes)");
  const plane = await ControlPlane.start({ log: (line) => log.info(line) });
  try {
    const kubectl = kubectlFor(plane.binaries.kubectl, plane.kubeconfigPath);
    const crds = (await readdir(crdsDir)).filter((f) => f.endsWith(".yaml")).map((f) => join(crdsDir, f));
    await kubectl.ok(["apply", "--server-side", ...crds.flatMap((f) => ["-f", f])]);
    await kubectl.ok([
      "wait",
      "--for=condition=Established",
      "--timeout=60s",
      ...crds.flatMap((f) => ["-f", f]),
    ]);
    await kubectl.ok(["create", "namespace", passdbNamespace]);
    await installCreatedByPolicies(kubectl);
    log.info({ startupMs: plane.timings.totalMs }, "sandbox control plane ready");
    return {
      kubeconfigPath: plane.kubeconfigPath,
      kubectlDir: dirname(plane.binaries.kubectl),
      server: plane.apiServerUrl,
      version: await plane.serverVersion(),
      stop: () => plane.stop(),
    };
  } catch (error) {
    await plane.stop();
    throw error;
  }
}

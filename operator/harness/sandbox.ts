// The sandbox behind `npm start` with no cluster: the embedded control plane with crds/ and the
// created-by admission policies installed, the password database namespace created, and the
// invitation portal running on loopback with the chart's Role, for trying the user flows by hand.
import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "../src/log.ts";
import { ControlPlane } from "./control-plane.ts";
import { kubectlFor } from "./kubectl.ts";
import { installCreatedByPolicies } from "./admission-policies.ts";
import { PortalCli, portalAccount } from "./portal-cli.ts";

const crdsDir = join(import.meta.dirname, "..", "..", "crds");

export interface Sandbox {
  kubeconfigPath: string;
  kubectlDir: string;
  server: string;
  version: string;
  /** The portal's URL: the operator's --portal-url, so invitation links open on this machine. */
  portalUrl: string;
  stop(): Promise<void>;
}

export async function startSandbox(log: Logger, passdbNamespace: string): Promise<Sandbox> {
  log.info("starting the sandbox control plane (the first run builds Kubernetes from source: minutes)");
  const plane = await ControlPlane.start({ log: (line) => log.info(line) });
  let account: Awaited<ReturnType<typeof portalAccount>> | undefined;
  let portal: PortalCli | undefined;
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
    // The operator's namespace is the database's here (the operator's default without a pod).
    account = await portalAccount(kubectl, plane.kubeconfigPath, passdbNamespace, { tokenDuration: "24h" });
    portal = await PortalCli.start({ kubeconfig: account.kubeconfig, namespace: passdbNamespace });
    log.info({ url: portal.url }, "sandbox portal running");
    const running = { portal, account };
    return {
      kubeconfigPath: plane.kubeconfigPath,
      kubectlDir: dirname(plane.binaries.kubectl),
      server: plane.apiServerUrl,
      version: await plane.serverVersion(),
      portalUrl: portal.url,
      stop: async () => {
        await running.portal.stop();
        await running.account.dispose();
        await plane.stop();
      },
    };
  } catch (error) {
    await portal?.stop();
    await account?.dispose();
    await plane.stop();
    throw error;
  }
}

// `devicepass portal` as a process, the way a pod runs it: its own port on loopback, its JSON log
// (stderr) in a file, stopped with SIGTERM, and the chart's ServiceAccount, Role and admission
// policy to run it with. Its temp folder is watched like the control plane's.
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { invitationNames } from "../src/api/names.ts";
import { portalAdmissionPolicy, portalRules } from "../src/install/portal-rbac.ts";
import { writeServiceAccountKubeconfig, type Kubectl } from "./kubectl.ts";
import { freePort, loopback } from "./net.ts";
import { ownedTempDir, stopTree } from "./owned-dir.ts";
import { ManagedProcess } from "./process.ts";

const mainScript = join(import.meta.dirname, "..", "src", "main.ts");

export class PortalCli {
  readonly dir: string;
  /** http://127.0.0.1:<port>, also its --public-url. */
  readonly url: string;
  private readonly process: ManagedProcess;
  private stopped = false;

  private constructor(dir: string, url: string, process: ManagedProcess) {
    this.dir = dir;
    this.url = url;
    this.process = process;
  }

  /** Starts `node operator/src/main.ts portal …` and waits for its "portal running" line and /readyz. */
  static async start(
    options: { kubeconfig: string; namespace: string; args?: string[] },
    timeoutMs = 60_000,
  ): Promise<PortalCli> {
    const dir = await ownedTempDir("devicepass-portal-");
    const port = await freePort();
    const url = `http://${loopback}:${port}`;
    const args = [
      mainScript,
      "portal",
      "--kubeconfig", options.kubeconfig,
      "--namespace", options.namespace,
      "--listen", `${loopback}:${port}`,
      "--public-url", url,
      "--log-level", "debug",
      ...(options.args ?? []),
    ]; // prettier-ignore
    const process = new ManagedProcess("portal", globalThis.process.execPath, args, dir);
    const cli = new PortalCli(dir, url, process);
    try {
      await process.start();
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        await process.assertRunning();
        const ready = (await cli.log()).includes('"portal running"') && (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)); // prettier-ignore
        if (ready) break;
        if (Date.now() > deadline)
          throw new Error(`the portal did not start in ${timeoutMs} ms:\n${await process.tail()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } catch (error) {
      await cli.stop();
      throw error;
    }
    return cli;
  }

  /** Its log so far (JSON lines). */
  log(): Promise<string> {
    return readFile(this.process.logFile, "utf8").catch(() => "");
  }

  async assertRunning(): Promise<void> {
    await this.process.assertRunning();
  }

  /** SIGTERM, then removes its folder. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await stopTree(this.process);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * What the chart gives the portal, in `namespace`: a ServiceAccount, the portal's Role and
 * RoleBinding (operator/src/install/portal-rbac.ts) and its admission policy; and a kubeconfig
 * that authenticates with a token of that ServiceAccount, so the portal runs with nothing else.
 */
export async function portalAccount(
  kubectl: Kubectl,
  adminKubeconfig: string,
  namespace: string,
  options: { name?: string; tokenDuration?: string } = {},
): Promise<{ kubeconfig: string; dispose: () => Promise<void> }> {
  const name = options.name ?? "devicepass-portal";
  const policyName = `${name}-${namespace}`;
  const objects = [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name, namespace },
      rules: portalRules(invitationNames.autoconfigConfigMap),
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name, namespace },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name, namespace }],
    },
    ...portalAdmissionPolicy({ name: policyName, namespace, serviceAccount: name }),
  ];
  await kubectl.ok(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));
  const dir = await ownedTempDir("devicepass-portal-account-");
  const kubeconfig = join(dir, "kubeconfig");
  await writeServiceAccountKubeconfig(
    kubectl,
    adminKubeconfig,
    { namespace, name, duration: options.tokenDuration ?? "2h" },
    kubeconfig,
  );
  return {
    kubeconfig,
    dispose: async () => {
      await kubectl.run(["delete", "validatingadmissionpolicy,validatingadmissionpolicybinding", policyName]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

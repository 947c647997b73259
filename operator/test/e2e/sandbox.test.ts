// `npm start` on a machine with no cluster, as a newcomer runs it: the sandbox comes up, the two
// printed lines give a working kubectl, the example flows work (an invitation's link too, in the
// sandbox's portal), and Ctrl-C leaves nothing behind.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { kubectlFor } from "../../harness/kubectl.ts";
import { invitationUrl, openLink, redeemLink } from "../invitation-support.ts";
import { eventually } from "../support.ts";

const root = join(import.meta.dirname, "..", "..", "..");

/** Processes whose command line mentions `text` (the sandbox's temp folder names its children). */
async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

describe("npm start without a cluster", () => {
  let home: string | undefined;
  afterAll(async () => {
    if (home) await rm(home, { recursive: true, force: true });
  });

  it("starts a sandbox that kubectl reaches with the printed lines, runs the flows, and stops cleanly on Ctrl-C", async () => {
    home = await mkdtemp(join(tmpdir(), "devicepass-newcomer-"));
    // A newcomer's machine: no KUBECONFIG, no ~/.kube/config; the built binaries stay where they are.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      DEVICEPASS_CACHE_DIR:
        process.env.DEVICEPASS_CACHE_DIR ??
        join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "devicepass"),
      GOCACHE: process.env.GOCACHE ?? join(homedir(), ".cache", "go-build"),
      GOMODCACHE: process.env.GOMODCACHE ?? join(homedir(), "go", "pkg", "mod"),
    };
    delete env.KUBECONFIG;
    delete env.KUBERNETES_SERVICE_HOST;
    // Its own process group, as a terminal's foreground job: Ctrl-C signals the whole group.
    const child = spawn("npm", ["start"], {
      cwd: root,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const deadline = Date.now() + 180_000;
      while (!/^sandbox ready/m.test(stdout)) {
        if (child.exitCode !== null) throw new Error(`npm start exited:\n${stdout}\n${stderr.slice(-3000)}`);
        if (Date.now() > deadline)
          throw new Error(`no "sandbox ready" line:\n${stdout}\n${stderr.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const kubeconfig = /^export KUBECONFIG=(.+)$/m.exec(stdout)?.[1];
      const pathDir = /^export PATH=(.+):\$PATH$/m.exec(stdout)?.[1];
      expect(kubeconfig).toBeDefined();
      expect(pathDir).toBeDefined();
      const kubectl = kubectlFor(join(pathDir!, "kubectl"), kubeconfig!);

      const namespaces = await kubectl.ok(["get", "namespaces"]);
      expect(namespaces).toMatch(/^default\s+Active/m);
      expect(namespaces).toMatch(/^devicepass-system\s+Active/m);

      // The README's walkthrough: a cluster administrator's domain, then the mailbox and its devices.
      await kubectl.ok(["apply", "-f", join(root, "examples", "domain")]);
      await kubectl.ok(["apply", "-f", join(root, "examples", "mail")]);
      await kubectl.ok(["wait", "--for=condition=Ready", "--timeout=90s", "maildevice", "--all"]);

      // The README's invitation: its link in its Secret opens in the portal the sandbox runs.
      const portalUrl = /invitation portal at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
      expect(portalUrl).toBeDefined();
      await kubectl.ok(["apply", "-f", join(root, "examples", "invitation")]);
      const link = await eventually(() => invitationUrl(kubectl, "default", "alice-tablet-bob"), 30_000);
      expect(link.startsWith(`${portalUrl}/i/`)).toBe(true);
      expect((await openLink(link)).status).toBe(200);
      expect((await redeemLink(link)).password).toMatch(/^[A-Za-z0-9]{24}$/);
      await kubectl.ok(["wait", "--for=jsonpath={.status.invitation.state}=Redeemed", "--timeout=30s", "maildevice/alice-tablet-bob"]); // prettier-ignore
      await kubectl.ok([
        "annotate",
        "maildevice",
        "alice-iphone",
        "mail.devicepass.io/rotate=sandbox",
        "--overwrite",
      ]);
      await kubectl.ok(["delete", "maildevices", "--all"]);
      expect(
        (
          await kubectl.ok(["get", "secrets", "-l", "app.kubernetes.io/managed-by=devicepass", "-o", "name"])
        ).trim(),
      ).toBe("");

      const sandboxDir = dirname(kubeconfig!);
      expect(await processesMentioning(sandboxDir)).not.toEqual([]);
      process.kill(-child.pid!, "SIGINT"); // Ctrl-C
      await exited;
      // Children are gone once npm returns; allow the kernel a moment to reap them.
      const gone = Date.now() + 15_000;
      while ((await processesMentioning(sandboxDir)).length > 0 && Date.now() < gone)
        await new Promise((r) => setTimeout(r, 200));
      expect(await processesMentioning(sandboxDir)).toEqual([]);
      expect(existsSync(sandboxDir)).toBe(false);
      expect(stderr).toContain('"msg":"stopped"');
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // the group is already gone
        }
      }
    }
  });
});

// The Dockerfile's steps without Docker: compile with `npm run build`'s tsconfig, install only the
// production dependencies in a folder of their own, and run the compiled entrypoint with the exact
// command line of the chart's Deployment (as the chart's ServiceAccount) until it reconciles a device.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminKubectl, eventually, withNamespace } from "../support.ts";
import { testArgon2 } from "../operator-support.ts";
import { chartDir, helmFor, repoRoot, serviceAccountKubeconfig, valuesFile } from "../install-support.ts";
import { freePort } from "../../harness/net.ts";

const run = promisify(execFile);
const kubectl = adminKubectl();

describe("the production build", () => {
  const disposers: (() => Promise<void>)[] = [];
  let app: string;
  let operator: ChildProcess | undefined;
  let exited: Promise<number | null>;
  const output: string[] = [];

  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), "devicepass-app-"));
    disposers.push(() => rm(app, { recursive: true, force: true }));
    // Build stage: `npm run build` (tsc -p tsconfig.build.json), here into the temporary folder.
    const tsc = join(repoRoot, "node_modules", "typescript", "bin", "tsc");
    await run(
      process.execPath,
      [tsc, "-p", join(repoRoot, "tsconfig.build.json"), "--outDir", join(app, "dist")],
      {
        cwd: repoRoot,
        timeout: 300_000,
      },
    );
    // Runtime stage: the manifest and lock file, then `npm ci --omit=dev`.
    for (const file of ["package.json", "package-lock.json"])
      await copyFile(join(repoRoot, file), join(app, file));
    await run("npm", ["ci", "--omit=dev", "--no-audit", "--no-fund"], {
      cwd: app,
      timeout: 480_000,
      maxBuffer: 16 * 1024 * 1024,
      // npm's own scripts run on the Node 24 first in PATH, as in the image.
      env: { ...process.env, PATH: `${join(repoRoot, "node_modules", ".bin")}:${process.env.PATH ?? ""}` },
    });
  }, 600_000);

  afterAll(async () => {
    if (operator && operator.exitCode === null) operator.kill("SIGKILL");
    for (const dispose of disposers.reverse()) await dispose();
  });

  it("holds production dependencies only", async () => {
    const installed = await readdir(join(app, "node_modules"));
    for (const dev of ["typescript", "vitest", "eslint", "prettier", "node"])
      expect(installed).not.toContain(dev);
    for (const dependency of ["@kubernetes/client-node", "@node-rs", "cdk8s", "pino", "zod"])
      expect(installed).toContain(dependency.split("/")[0]);
  });

  it("exports the cdk8s constructs as the package's entry point, with types", async () => {
    await stat(join(app, "dist", "operator", "src", "constructs", "index.d.ts"));
    const script = `
      import { App, Chart } from "cdk8s";
      import { MailAddress, MailDevice } from "devicepass";
      const chart = new Chart(new App(), "mail");
      const alice = new MailAddress(chart, "alice", { address: "alice@example.com" });
      new MailDevice(chart, "iphone", { address: alice, displayName: "Alice's iPhone", icon: "phone" });
      process.stdout.write(JSON.stringify(chart.toJson().map((o) => o.kind)));`;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: app });
    expect(JSON.parse(stdout)).toEqual(["MailAddress", "MailDevice"]);
  });

  it("runs the chart's command line as its ServiceAccount and reconciles a device", async () => {
    const helm = await helmFor();
    const namespaces: Record<string, string> = {};
    for (const prefix of ["prod", "prod-mail", "prod-passdb"]) {
      const ns = await withNamespace(kubectl, prefix);
      disposers.push(ns.dispose);
      namespaces[prefix] = ns.name;
    }
    const [releaseNs, mailNs, passdbNs] = [
      namespaces.prod!,
      namespaces["prod-mail"]!,
      namespaces["prod-passdb"]!,
    ];
    // Cluster-scoped names start with the release name: unique, beside install.test.ts's releases.
    const release = `prod-${randomBytes(3).toString("hex")}`;
    const [metricsPort, healthPort] = [await freePort(), await freePort()];
    await helm.ok([
      "install", release, chartDir, "-n", releaseNs, "-f",
      await valuesFile({
        watchNamespaces: [mailNs],
        passdb: { namespace: passdbNs, shards: 4 },
        password: {
          argon2: { memoryKiB: testArgon2.memoryCost, iterations: testArgon2.timeCost, parallelism: 1 },
        },
        metrics: { port: metricsPort },
        health: { port: healthPort },
      }),
    ]); // prettier-ignore
    disposers.push(async () => void (await helm.run(["uninstall", release, "-n", releaseNs])));

    // A domain of its own admits the test's namespace (a MailDomain is required by default).
    const domain = `${mailNs}.test`;
    const objects = [
      {
        apiVersion: "mail.devicepass.io/v1alpha1",
        kind: "MailDomain",
        metadata: { name: domain },
        spec: { namespaces: [mailNs] },
      },
      {
        apiVersion: "mail.devicepass.io/v1alpha1",
        kind: "MailAddress",
        metadata: { name: "box", namespace: mailNs },
        spec: { address: `box@${domain}` },
      },
      {
        apiVersion: "mail.devicepass.io/v1alpha1",
        kind: "MailDevice",
        metadata: { name: "box-laptop", namespace: mailNs },
        spec: { address: "box", displayName: "Laptop", icon: "laptop" },
      },
    ];
    await kubectl.ok(["apply", "-f", "-"], objects.map((o) => JSON.stringify(o)).join("\n"));
    disposers.push(async () => void (await kubectl.run(["delete", "maildomain", domain, "--wait=false"])));

    // The Deployment's own arguments, as the kubelet would pass them.
    const deployment = await kubectl.json<{
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    }>(["get", "deployment", release, "-n", releaseNs]);
    const args = deployment.spec.template.spec.containers[0]!.args;
    const kubeconfig = await serviceAccountKubeconfig(kubectl, releaseNs, release);
    operator = spawn(process.execPath, [join(app, "dist", "operator", "src", "main.js"), ...args, "--kubeconfig", kubeconfig], {
      cwd: app,
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "", HOME: app },
    }); // prettier-ignore
    operator.stdout!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    operator.stderr!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    const child = operator;
    exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));

    await eventually(async () => {
      expect(child.exitCode, output.join("")).toBeNull();
      const device = await kubectl.json<{ status?: { conditions?: { type: string; status: string }[] } }>([
        "get", "maildevice", "box-laptop", "-n", mailNs,
      ]); // prettier-ignore
      expect(device.status?.conditions?.find((c) => c.type === "Ready")?.status, output.join("")).toBe(
        "True",
      );
    }, 60_000);
    const secret = await kubectl.json<{ data: { username: string } }>([
      "get", "secret", "box-laptop-mail-credentials", "-n", mailNs,
    ]); // prettier-ignore
    expect(Buffer.from(secret.data.username, "base64").toString()).toBe(`box@${domain}`);

    // The probes and the metrics endpoint the chart points at.
    for (const path of ["/healthz", "/readyz"])
      expect((await fetch(`http://127.0.0.1:${healthPort}${path}`)).status, path).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE /m);

    // SIGTERM, as the kubelet stops a pod: a clean exit.
    child.kill("SIGTERM");
    expect(await exited, output.join("")).toBe(0);
    expect(output.join("")).not.toMatch(/forbidden/i);
  });
});

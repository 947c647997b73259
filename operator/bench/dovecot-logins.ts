// Benchmark of the mail server side (issue 4): how long after `kubectl annotate … rotate` Dovecot
// refuses the old password, and how a login's time grows with the number of devices of its
// address. Real control plane, the operator as a process with its default argon2id cost, Dovecot
// fed by the Secret volume mirror. Prints a table and writes JSON.
//   node operator/bench/dovecot-logins.ts [--rotations 20] [--devices 1,10,50] [--logins 10] [--out FILE]
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ControlPlane } from "../harness/control-plane.ts";
import { MailServer } from "../harness/dovecot.ts";
import { kubectlFor, type Kubectl } from "../harness/kubectl.ts";
import { imapLogin, type Endpoint } from "../harness/mail-clients.ts";
import { OperatorProcess } from "../harness/operator-process.ts";
import { SecretVolume } from "../harness/secret-volume.ts";

const { values } = parseArgs({
  options: {
    rotations: { type: "string", default: "20" },
    devices: { type: "string", default: "1,10,50" },
    logins: { type: "string", default: "10" },
    out: { type: "string", default: join(tmpdir(), "devicepass-dovecot-logins.json") },
  },
});
const rotations = Number(values.rotations);
const deviceCounts = values.devices.split(",").map(Number);
const loginsPerCase = Number(values.logins);

const root = join(import.meta.dirname, "..", "..");
const mailNs = "bench-mail";
const passdbNs = "bench-passdb";

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  // Nearest rank: the smallest sample with at least p% of the samples at or below it.
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (ms: number) => Math.round(ms);

async function secretPassword(kubectl: Kubectl, name: string): Promise<string> {
  const out = await kubectl.ok(["get", "secret", "-n", mailNs, name, "-o", "jsonpath={.data.password}"]);
  return Buffer.from(out, "base64").toString("utf8");
}

async function until<T>(check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Rotation {
  /** kubectl annotate returned. */
  kubectlMs: number;
  /** The volume's `..data` swap that followed. */
  volumeSwapMs: number | undefined;
  /** Start of the first IMAP login with the old password that Dovecot refused. */
  refusedMs: number;
  /** Polling resolution: duration of the last accepted login before that (ms). */
  resolutionMs: number;
}

async function measureRotations(kubectl: Kubectl, volume: SecretVolume, imap: Endpoint): Promise<Rotation[]> {
  const address = "alice@example.com";
  const results: Rotation[] = [];
  let lastSwap = 0;
  volume.onSwap((at) => (lastSwap = at));
  for (let i = 0; i < rotations; i++) {
    const old = await secretPassword(kubectl, "alice-iphone-mail-credentials");
    // Steady state first: the current password works.
    await until(async () => ((await imapLogin(imap, address, old)).ok ? true : undefined));
    const started = performance.now();
    await kubectl.ok([
      "annotate", "-n", mailNs, "maildevice", "alice-iphone",
      `mail.devicepass.io/rotate=bench-${Date.now()}-${i}`, "--overwrite",
    ]); // prettier-ignore
    const kubectlMs = performance.now() - started;
    let resolutionMs = 0;
    const refusedAt = await until(async () => {
      const attempt = performance.now();
      const result = await imapLogin(imap, address, old);
      if (result.ok) {
        resolutionMs = result.ms;
        return undefined;
      }
      if (!/\[AUTHENTICATIONFAILED\]/.test(result.response))
        throw new Error(`unexpected answer: ${result.response}`);
      return attempt;
    });
    results.push({
      kubectlMs,
      volumeSwapMs: lastSwap > started ? lastSwap - started : undefined,
      refusedMs: refusedAt - started,
      resolutionMs,
    });
    process.stderr.write(`rotation ${i + 1}/${rotations}: refused after ${round(refusedAt - started)} ms\n`);
  }
  return results;
}

interface DeviceScaling {
  devices: number;
  /** Median login time with the password of the device read first / last / a wrong one (ms). */
  firstDevice: { p50: number; p95: number };
  lastDevice: { p50: number; p95: number };
  wrongPassword: { p50: number; p95: number };
}

function manifests(n: number): string {
  const name = `bench-${n}`;
  const docs = [
    { apiVersion: "mail.devicepass.io/v1alpha1", kind: "MailAddress", metadata: { name }, spec: { address: `bench${n}@example.com` } },
  ] as object[]; // prettier-ignore
  for (let i = 0; i < n; i++)
    docs.push({
      apiVersion: "mail.devicepass.io/v1alpha1",
      kind: "MailDevice",
      metadata: {
        name: `${name}-${String(i).padStart(3, "0")}`,
        labels: { "mail.devicepass.io/address": name },
      },
      spec: { address: name, displayName: `Device ${i}` },
    });
  return docs.map((d) => JSON.stringify(d)).join("\n---\n");
}

async function measureDevices(kubectl: Kubectl, imap: Endpoint): Promise<DeviceScaling[]> {
  const results: DeviceScaling[] = [];
  for (const n of deviceCounts) {
    const label = `mail.devicepass.io/address=bench-${n}`;
    await kubectl.ok(["apply", "-n", mailNs, "-f", "-"], manifests(n));
    await kubectl.ok([
      "wait",
      "-n",
      mailNs,
      "--for=condition=Ready",
      "--timeout=300s",
      "maildevice",
      "-l",
      label,
    ]);
    const address = `bench${n}@example.com`;
    // The passdb file lists devices sorted by namespace/name, and the Lua script tries them in order.
    const first = await secretPassword(kubectl, `bench-${n}-000-mail-credentials`);
    const last = await secretPassword(
      kubectl,
      `bench-${n}-${String(n - 1).padStart(3, "0")}-mail-credentials`,
    );
    await until(async () => ((await imapLogin(imap, address, last)).ok ? true : undefined));
    const sample = async (password: string, count: number, accepted: boolean) => {
      const times: number[] = [];
      for (let i = 0; i < count; i++) {
        const result = await imapLogin(imap, address, password);
        if (result.ok !== accepted) throw new Error(`unexpected answer for ${n} devices: ${result.response}`);
        times.push(result.ms);
      }
      return { p50: round(percentile(times, 50)), p95: round(percentile(times, 95)) };
    };
    const row: DeviceScaling = {
      devices: n,
      firstDevice: await sample(first, loginsPerCase, true),
      lastDevice: await sample(last, loginsPerCase, true),
      wrongPassword: await sample(`${first}-wrong`, Math.max(3, Math.ceil(loginsPerCase / 2)), false),
    };
    results.push(row);
    process.stderr.write(`${n} devices: ${JSON.stringify(row)}\n`);
  }
  return results;
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const plane = await ControlPlane.start({ log, controllerManager: false });
  const stops: (() => Promise<void>)[] = [() => plane.stop()];
  try {
    const kubectl = kubectlFor(plane.binaries.kubectl, plane.kubeconfigPath);
    const crds = join(root, "crds");
    await kubectl.ok(["apply", "--server-side", "-f", crds]);
    await kubectl.ok(["wait", "--for=condition=Established", "--timeout=60s", "-f", crds]);
    await kubectl.ok(["create", "namespace", mailNs]);
    await kubectl.ok(["create", "namespace", passdbNs]);
    const gid = Number(execFileSync("id", ["-g", "dovecot"], { encoding: "utf8" }).trim());
    const volume = await SecretVolume.start({ kubeconfig: plane.kubeconfigPath, namespace: passdbNs, defaultMode: 0o440, fsGroup: gid }); // prettier-ignore
    stops.unshift(() => volume.stop());
    const mail = await MailServer.start({ passdbDir: volume.dir, log });
    stops.unshift(() => mail.stop());
    const operator = await OperatorProcess.startRunning({ args: [
      "--kubeconfig", plane.kubeconfigPath,
      "--namespace", mailNs,
      "--passdb-namespace", passdbNs,
      "--passdb-shards", "4",
      "--doveadm-url", mail.doveadmUrl,
      "--doveadm-api-key-file", mail.doveadmApiKeyFile,
    ] }); // prettier-ignore
    stops.unshift(() => operator.dispose());
    const imap = { host: mail.host, port: mail.ports.imap };

    // Where MailDomain exists, admit the namespace as a cluster administrator would.
    if (existsSync(join(root, "examples", "domain"))) {
      await kubectl.ok(["label", "namespace", mailNs, "mail.devicepass.io/domain.example.com=admitted"]);
      await kubectl.ok(["apply", "-f", join(root, "examples", "domain")]);
    }
    await kubectl.ok(["apply", "-n", mailNs, "-f", join(root, "examples", "mail")]);
    await kubectl.ok(["wait", "-n", mailNs, "--for=condition=Ready", "--timeout=60s", "maildevice", "--all"]);
    const rotationResults = await measureRotations(kubectl, volume, imap);
    const scaling = await measureDevices(kubectl, imap);

    const refused = rotationResults.map((r) => r.refusedMs);
    const swaps = rotationResults.flatMap((r) => (r.volumeSwapMs === undefined ? [] : [r.volumeSwapMs]));
    const kubectlTimes = rotationResults.map((r) => r.kubectlMs);
    const summary = {
      rotations: rotationResults.length,
      refusedMs: { p50: round(percentile(refused, 50)), p95: round(percentile(refused, 95)), max: round(Math.max(0, ...refused)) },
      volumeSwapMs: { p50: round(percentile(swaps, 50)), p95: round(percentile(swaps, 95)) },
      kubectlMs: { p50: round(percentile(kubectlTimes, 50)), p95: round(percentile(kubectlTimes, 95)) },
      pollResolutionMs: { p50: round(percentile(rotationResults.map((r) => r.resolutionMs), 50)) },
    }; // prettier-ignore

    if (rotationResults.length > 0) {
      console.log(
        `\nRotation: kubectl annotate → Dovecot refuses the old password (${summary.rotations} rotations)`,
      );
      console.table({
        "kubectl annotate returns": summary.kubectlMs,
        "volume ..data swapped": summary.volumeSwapMs,
        "old password refused": summary.refusedMs,
      });
      console.log(`(polling resolution: one accepted IMAP login, p50 ${summary.pollResolutionMs.p50} ms)`);
    }
    console.log("\nIMAP login time (connect → tagged answer, ms) by number of devices of the address");
    console.table(
      Object.fromEntries(
        scaling.map((s) => [
          `${s.devices} devices`,
          {
            "first device p50": s.firstDevice.p50,
            "first p95": s.firstDevice.p95,
            "last device p50": s.lastDevice.p50,
            "last p95": s.lastDevice.p95,
            "wrong password p50": s.wrongPassword.p50,
            "wrong p95": s.wrongPassword.p95,
          },
        ]),
      ),
    );
    const report = { at: new Date().toISOString(), summary, rotations: rotationResults, scaling };
    await writeFile(values.out, JSON.stringify(report, null, 2));
    console.log(`\nJSON: ${values.out}`);
  } finally {
    for (const stop of stops)
      await stop().catch((e: unknown) => log(`cleanup failed: ${(e as Error).message}`));
  }
}

await main();

// A real Kubernetes control plane on loopback for tests and the sandbox: etcd, kube-apiserver
// and kube-controller-manager (garbage collector and namespace controllers), the way
// controller-runtime's envtest starts it, plus the controller-manager envtest lacks.
import { spawn } from "node:child_process";
import { readFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { binaryVersion, resolveBinaries, type Binaries } from "./binaries.ts";
import { ManagedProcess } from "./process.ts";
import { CertificateAuthority, createServiceAccountKey, type ClientIdentity, type KeyPair } from "./pki.ts";
import { freePort, loopback } from "./net.ts";

const watchdogScript = join(dirname(fileURLToPath(import.meta.url)), "watchdog.sh");

export interface ControlPlaneOptions {
  /** Progress lines; silent by default. */
  log?: (line: string) => void;
  /** Write the API server's audit log (request counts for benchmarks) with this policy YAML. */
  auditPolicy?: string;
  /** Start kube-controller-manager (garbage collector, namespace deletion). Default true. */
  controllerManager?: boolean;
}

export interface StartupTimings {
  etcdMs: number;
  apiServerMs: number;
  controllerManagerMs: number;
  totalMs: number;
}

interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** GET over HTTPS; resolves with the status (0 when the connection failed) and body. */
async function httpsGet(url: string, tls: TlsFiles): Promise<{ status: number; body: string }> {
  const read = (file: string | undefined) => (file ? readFile(file) : Promise.resolve(undefined));
  const [ca, cert, key] = await Promise.all([read(tls.ca), read(tls.cert), read(tls.key)]);
  return new Promise((resolve) => {
    const req = request(
      url,
      { ca, cert, key, rejectUnauthorized: ca !== undefined, timeout: 5000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", () => resolve({ status: 0, body: "" }));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/**
 * MutatingAdmissionPolicy is GA (admissionregistration.k8s.io/v1, on by default) since 1.36; on
 * 1.34 and 1.35 it is beta and off, so the harness turns it on there as a cluster administrator
 * would, and the same tests of `mail.devicepass.io/created-by` run on every supported version.
 */
export function admissionPolicyArgs(minor: number): string[] {
  if (minor >= 36 || minor < 34) return [];
  return [
    "--feature-gates=MutatingAdmissionPolicy=true",
    "--runtime-config=admissionregistration.k8s.io/v1beta1=true",
  ];
}

export class ControlPlane {
  readonly apiServerUrl: string;
  readonly kubeconfigPath: string;
  readonly timings: StartupTimings = { etcdMs: 0, apiServerMs: 0, controllerManagerMs: 0, totalMs: 0 };
  readonly auditLogPath: string;
  private readonly processes: ManagedProcess[] = [];
  private etcd!: ManagedProcess;
  private apiServer!: ManagedProcess;
  private admin!: ClientIdentity;
  private stopped = false;

  readonly dir: string;
  readonly binaries: Binaries;
  private readonly ca: CertificateAuthority;
  private readonly ports: {
    etcdClient: number;
    etcdPeer: number;
    apiServer: number;
    controllerManager: number;
  };
  private readonly options: ControlPlaneOptions;

  private constructor(
    dir: string,
    binaries: Binaries,
    ca: CertificateAuthority,
    ports: ControlPlane["ports"],
    options: ControlPlaneOptions,
  ) {
    this.dir = dir;
    this.binaries = binaries;
    this.ca = ca;
    this.ports = ports;
    this.options = options;
    this.apiServerUrl = `https://${loopback}:${ports.apiServer}`;
    this.kubeconfigPath = join(dir, "kubeconfig");
    this.auditLogPath = join(dir, "audit.log");
  }

  /** Builds or finds the binaries, starts every component, and waits until the API server serves. */
  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const log = options.log ?? (() => {});
    const binaries = await resolveBinaries();
    const dir = await mkdtemp(join(tmpdir(), "devicepass-control-plane-"));
    await mkdir(join(dir, "pids"));
    // Detached, so that it outlives us and cleans up if we die without stop().
    spawn("bash", [watchdogScript, String(process.pid), dir], { detached: true, stdio: "ignore" }).unref();
    const ca = await CertificateAuthority.create(dir, "devicepass-test-ca");
    const ports = {
      etcdClient: await freePort(),
      etcdPeer: await freePort(),
      apiServer: await freePort(),
      controllerManager: await freePort(),
    };
    const plane = new ControlPlane(dir, binaries, ca, ports, options);
    try {
      await plane.boot(log);
    } catch (error) {
      await plane.stop();
      throw error;
    }
    return plane;
  }

  private async boot(log: (line: string) => void): Promise<void> {
    const started = performance.now();
    const [serving, serviceAccount, admin] = await Promise.all([
      this.ca.issueServing("kube-apiserver", [loopback, "10.0.0.1"], ["localhost", "kubernetes.default.svc"]),
      createServiceAccountKey(this.dir),
      this.ca.issueClient("admin", ["system:masters"]),
    ]);
    this.admin = admin;

    this.etcd = this.track(new ManagedProcess("etcd", this.binaries.etcd, this.etcdArgs(), this.dir));
    await this.startEtcd();
    this.timings.etcdMs = Math.round(performance.now() - started);
    log(`etcd ready on ${loopback}:${this.ports.etcdClient} in ${this.timings.etcdMs} ms`);

    const apiArgs = [
      ...(await this.apiServerArgs(serving, serviceAccount)),
      ...admissionPolicyArgs((await binaryVersion(this.binaries["kube-apiserver"])).minor),
    ];
    this.apiServer = this.track(
      new ManagedProcess("kube-apiserver", this.binaries["kube-apiserver"], apiArgs, this.dir),
    );
    await this.writeKubeconfig(this.kubeconfigPath, admin);
    await this.startApiServer();
    this.timings.apiServerMs = Math.round(performance.now() - started) - this.timings.etcdMs;
    log(`kube-apiserver ready at ${this.apiServerUrl} in ${this.timings.apiServerMs} ms`);

    if (this.options.controllerManager !== false) {
      const kcmStarted = performance.now();
      const kcm = this.track(
        new ManagedProcess(
          "kube-controller-manager",
          this.binaries["kube-controller-manager"],
          this.controllerManagerArgs(),
          this.dir,
        ),
      );
      await kcm.start();
      const healthz = `https://${loopback}:${this.ports.controllerManager}/healthz`;
      await waitFor("kube-controller-manager /healthz", async () => {
        await kcm.assertRunning();
        return (await httpsGet(healthz, {})).status === 200;
      }, 60_000); // prettier-ignore
      this.timings.controllerManagerMs = Math.round(performance.now() - kcmStarted);
      log(`kube-controller-manager ready in ${this.timings.controllerManagerMs} ms`);
    }
    this.timings.totalMs = Math.round(performance.now() - started);
  }

  private track(process: ManagedProcess): ManagedProcess {
    this.processes.push(process);
    return process;
  }

  private etcdArgs(): string[] {
    const client = `http://${loopback}:${this.ports.etcdClient}`;
    const peer = `http://${loopback}:${this.ports.etcdPeer}`;
    return [
      "--name=devicepass-test",
      `--data-dir=${join(this.dir, "etcd")}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=devicepass-test=${peer}`,
      "--unsafe-no-fsync=true",
      "--log-level=warn",
    ];
  }

  private async apiServerArgs(serving: KeyPair, serviceAccount: KeyPair): Promise<string[]> {
    const args = [
      `--etcd-servers=http://${loopback}:${this.ports.etcdClient}`,
      `--cert-dir=${join(this.dir, "apiserver-certs")}`,
      `--tls-cert-file=${serving.certFile}`,
      `--tls-private-key-file=${serving.keyFile}`,
      `--client-ca-file=${this.ca.certFile}`,
      `--secure-port=${this.ports.apiServer}`,
      `--bind-address=${loopback}`,
      `--advertise-address=${loopback}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      "--allow-privileged=true",
      "--disable-admission-plugins=ServiceAccount",
      "--authorization-mode=RBAC",
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${serviceAccount.certFile}`,
      `--service-account-signing-key-file=${serviceAccount.keyFile}`,
      // A loopback advertise address cannot be an Endpoints address; nothing here needs it.
      "--endpoint-reconciler-type=none",
      "--profiling=false",
    ];
    if (this.options.auditPolicy !== undefined) {
      const policyFile = join(this.dir, "audit-policy.yaml");
      await writeFile(policyFile, this.options.auditPolicy);
      args.push(
        `--audit-policy-file=${policyFile}`,
        `--audit-log-path=${this.auditLogPath}`,
        "--audit-log-mode=blocking",
      );
    }
    return args;
  }

  private controllerManagerArgs(): string[] {
    const kubeconfig = this.kubeconfigPath;
    return [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      // clusterrole-aggregation: the built-in view/edit/admin roles take in aggregated ClusterRoles.
      "--controllers=garbage-collector-controller,namespace-controller,clusterrole-aggregation-controller",
      "--leader-elect=false",
      `--bind-address=${loopback}`,
      `--secure-port=${this.ports.controllerManager}`,
      `--cert-dir=${join(this.dir, "controller-manager-certs")}`,
    ];
  }

  private async startEtcd(): Promise<void> {
    await this.etcd.start();
    await waitFor("etcd /health", async () => {
      await this.etcd.assertRunning();
      const res = await fetch(`http://${loopback}:${this.ports.etcdClient}/health`).catch(() => undefined);
      return res?.ok === true;
    }, 60_000); // prettier-ignore
  }

  private async startApiServer(): Promise<void> {
    await this.apiServer.start();
    const tls = { ca: this.ca.certFile, cert: this.admin.certFile, key: this.admin.keyFile };
    await waitFor("kube-apiserver /readyz and namespace default", async () => {
      await this.apiServer.assertRunning();
      if ((await httpsGet(`${this.apiServerUrl}/readyz`, tls)).status !== 200) return false;
      return (await httpsGet(`${this.apiServerUrl}/api/v1/namespaces/default`, tls)).status === 200;
    }, 120_000); // prettier-ignore
  }

  /** The API server's /version, as kubectl would report it. */
  async serverVersion(): Promise<string> {
    const tls = { ca: this.ca.certFile, cert: this.admin.certFile, key: this.admin.keyFile };
    const { body } = await httpsGet(`${this.apiServerUrl}/version`, tls);
    return (JSON.parse(body) as { gitVersion: string }).gitVersion;
  }

  /** A kubeconfig that authenticates as `user` in `groups`, for tests of who may do what. */
  async kubeconfigFor(user: string, groups: string[] = []): Promise<string> {
    const identity = await this.ca.issueClient(user, groups);
    const path = join(this.dir, `kubeconfig-${user.replace(/[^a-zA-Z0-9_-]/g, "_")}`);
    await this.writeKubeconfig(path, identity);
    return path;
  }

  private async writeKubeconfig(path: string, identity: ClientIdentity): Promise<void> {
    const b64 = async (file: string) => (await readFile(file)).toString("base64");
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "devicepass",
          cluster: { server: this.apiServerUrl, "certificate-authority-data": await b64(this.ca.certFile) },
        },
      ],
      users: [
        {
          name: identity.user,
          user: {
            "client-certificate-data": await b64(identity.certFile),
            "client-key-data": await b64(identity.keyFile),
          },
        },
      ],
      contexts: [{ name: "devicepass", context: { cluster: "devicepass", user: identity.user } }],
      "current-context": "devicepass",
    };
    await writeFile(path, stringify(config), { mode: 0o600 });
  }

  /**
   * Kills kube-apiserver (SIGKILL by default), leaves it down for `downMs` (an outage longer than
   * a client's deadlines), and starts it again on the same port and etcd.
   */
  async restartApiServer(signal: NodeJS.Signals = "SIGKILL", downMs = 0): Promise<void> {
    await this.apiServer.stop(signal);
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.startApiServer();
  }

  /** Kills etcd, leaves it down for `downMs`, and starts it again on the same data directory. */
  async restartEtcd(signal: NodeJS.Signals = "SIGKILL", downMs = 0): Promise<void> {
    await this.etcd.stop(signal);
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.startEtcd();
  }

  /** Stops every component (last started first) and removes the temporary folder. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const process of [...this.processes].reverse()) await process.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

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
  /** Serve a real node (operator/harness/node.ts); without it, the plane has no nodes and no pods run. */
  node?: NodeServing;
}

/**
 * What a real node's pods need from the control plane: kube-apiserver on an address the node's
 * network reaches (the `kubernetes` Service's endpoint), ServiceAccount admission with the token,
 * ServiceAccount and root-CA controllers, Deployments, ReplicaSets and EndpointSlices,
 * kube-scheduler, Node authorization for the kubelet, and a client certificate for `kubectl logs`.
 */
export interface NodeServing {
  apiServerAddress: string;
  schedulerBinary: string;
}

/** kube-controller-manager's controllers: these always, the node's after them when it serves one. */
const controllers = [
  "garbage-collector-controller",
  "namespace-controller",
  "clusterrole-aggregation-controller",
];
const nodeControllers = [
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "root-ca-certificate-publisher-controller",
  "deployment-controller",
  "replicaset-controller",
  "endpointslice-controller",
  "endpointslice-mirroring-controller",
  "disruption-controller",
  "pod-garbage-collector-controller",
  // Lifts the node.kubernetes.io/not-ready taint the kubelet registers with, once the node is Ready.
  "node-lifecycle-controller",
];

export interface StartupTimings {
  etcdMs: number;
  apiServerMs: number;
  controllerManagerMs: number;
  schedulerMs: number;
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
  readonly timings: StartupTimings = {
    etcdMs: 0,
    apiServerMs: 0,
    controllerManagerMs: 0,
    schedulerMs: 0,
    totalMs: 0,
  };
  readonly auditLogPath: string;
  private readonly processes: ManagedProcess[] = [];
  private etcd!: ManagedProcess;
  private apiServer!: ManagedProcess;
  private admin!: ClientIdentity;
  private serviceAccount!: KeyPair;
  private stopped = false;

  readonly dir: string;
  readonly binaries: Binaries;
  private readonly ca: CertificateAuthority;
  private readonly ports: {
    etcdClient: number;
    etcdPeer: number;
    apiServer: number;
    controllerManager: number;
    scheduler: number;
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
    this.apiServerUrl = `https://${options.node?.apiServerAddress ?? loopback}:${ports.apiServer}`;
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
      scheduler: await freePort(),
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
    const addresses = [
      loopback,
      "10.0.0.1",
      ...(this.options.node ? [this.options.node.apiServerAddress] : []),
    ];
    const [serving, serviceAccount, admin] = await Promise.all([
      this.ca.issueServing("kube-apiserver", addresses, ["localhost", "kubernetes.default.svc"]),
      createServiceAccountKey(this.dir),
      this.ca.issueClient("admin", ["system:masters"]),
    ]);
    this.admin = admin;
    this.serviceAccount = serviceAccount;

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
    if (this.options.node) {
      const schedulerStarted = performance.now();
      const scheduler = this.track(
        new ManagedProcess(
          "kube-scheduler",
          this.options.node.schedulerBinary,
          this.schedulerArgs(),
          this.dir,
        ),
      );
      await scheduler.start();
      const healthz = `https://${loopback}:${this.ports.scheduler}/healthz`;
      await waitFor("kube-scheduler /healthz", async () => {
        await scheduler.assertRunning();
        return (await httpsGet(healthz, {})).status === 200;
      }, 60_000); // prettier-ignore
      this.timings.schedulerMs = Math.round(performance.now() - schedulerStarted);
      log(`kube-scheduler ready in ${this.timings.schedulerMs} ms`);
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
      // etcd's suggested maximum, as production clusters set it: the 2 GiB default fills between
      // two of kube-apiserver's 5-minute compactions when 50,000 devices' shard versions go by.
      `--quota-backend-bytes=${8 * 2 ** 30}`,
      "--log-level=warn",
    ];
  }

  private async apiServerArgs(serving: KeyPair, serviceAccount: KeyPair): Promise<string[]> {
    const address = this.options.node?.apiServerAddress ?? loopback;
    const args = [
      `--etcd-servers=http://${loopback}:${this.ports.etcdClient}`,
      `--cert-dir=${join(this.dir, "apiserver-certs")}`,
      `--tls-cert-file=${serving.certFile}`,
      `--tls-private-key-file=${serving.keyFile}`,
      `--client-ca-file=${this.ca.certFile}`,
      `--secure-port=${this.ports.apiServer}`,
      `--bind-address=${address}`,
      `--advertise-address=${address}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      "--allow-privileged=true",
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${serviceAccount.certFile}`,
      `--service-account-signing-key-file=${serviceAccount.keyFile}`,
      "--profiling=false",
    ];
    if (this.options.node) {
      // The kubelet authorizes as a node; kube-apiserver reaches it by IP for logs and exec.
      const kubeletClient = await this.ca.issueClient("kube-apiserver-kubelet-client", ["system:masters"]);
      args.push(
        "--authorization-mode=Node,RBAC",
        `--kubelet-client-certificate=${kubeletClient.certFile}`,
        `--kubelet-client-key=${kubeletClient.keyFile}`,
        "--kubelet-preferred-address-types=InternalIP",
      );
    } else {
      args.push(
        "--authorization-mode=RBAC",
        // No pods run without a node: no ServiceAccount tokens to mount.
        "--disable-admission-plugins=ServiceAccount",
        // A loopback advertise address cannot be an Endpoints address; nothing here needs it.
        "--endpoint-reconciler-type=none",
      );
    }
    if (this.options.auditPolicy !== undefined) {
      const policyFile = join(this.dir, "audit-policy.yaml");
      await writeFile(policyFile, this.options.auditPolicy);
      args.push(
        `--audit-policy-file=${policyFile}`,
        `--audit-log-path=${this.auditLogPath}`,
        "--audit-log-mode=blocking",
        // Never rotated (the default rotates at 100 MB): the bench reads the one file as it grows.
        `--audit-log-maxsize=${1_000_000}`,
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
      `--controllers=${[...controllers, ...(this.options.node ? nodeControllers : [])].join(",")}`,
      "--leader-elect=false",
      `--bind-address=${loopback}`,
      `--secure-port=${this.ports.controllerManager}`,
      `--cert-dir=${join(this.dir, "controller-manager-certs")}`,
      ...(this.options.node
        ? [
            // The token controller signs ServiceAccount tokens and hands out the CA pods verify kube-apiserver with.
            `--service-account-private-key-file=${this.serviceAccount.keyFile}`,
            `--root-ca-file=${this.ca.certFile}`,
          ]
        : []),
    ];
  }

  private schedulerArgs(): string[] {
    const kubeconfig = this.kubeconfigPath;
    return [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      "--leader-elect=false",
      `--bind-address=${loopback}`,
      `--secure-port=${this.ports.scheduler}`,
      `--cert-dir=${join(this.dir, "scheduler-certs")}`,
    ];
  }

  /** The CA that signs every certificate of this plane (clients' and kube-apiserver's). */
  get caCertFile(): string {
    return this.ca.certFile;
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

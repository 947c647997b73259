// A real Kubernetes node for the harness: Debian's containerd and runc, the CNI bridge, kubelet and
// kube-proxy in a network namespace of their own, registered with a control plane started to serve
// it (kube-apiserver on the host end of the node's veth, which is the `kubernetes` Service's endpoint).
// Pods' traffic never leaves that namespace but for the veth to the host: it has no default route,
// and the host routes only the node's own pod subnet into it (kube-apiserver → pods, tests → pods).
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { randomBytes, randomInt } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { resolveNodeBinaries, type NodeBinaries } from "./binaries.ts";
import { ControlPlane } from "./control-plane.ts";
import { buildImages, type BuiltImage, type ImageName } from "./images.ts";
import { kubectlFor, type Kubectl } from "./kubectl.ts";
import { ManagedProcess } from "./process.ts";

const run = promisify(execFile);
const watchdogScript = join(import.meta.dirname, "watchdog.sh");
const cleanupScript = join(import.meta.dirname, "node-cleanup.sh");

/** The node's name: one node per control plane, so it never collides. */
export const nodeName = "devicepass-node";
/** The kubelet's default syncFrequency, which bounds how late a Secret volume shows a change. */
export const defaultSyncFrequency = "1m";

export interface NodeClusterOptions {
  /** Progress lines; silent by default. */
  log?: (line: string) => void;
  /** The kubelet's syncFrequency (`10s`, `1m`); default the kubelet's own, 1m. */
  syncFrequency?: string;
}

export interface NodeTimings {
  imagesMs: number;
  controlPlaneMs: number;
  /** From starting containerd until the Node is Ready (images imported meanwhile). */
  nodeMs: number;
}

async function sh(command: string, args: string[]): Promise<string> {
  try {
    return (await run(command, args, { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 })).stdout;
  } catch (error) {
    const e = error as Error & { stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed: ${e.stderr ?? e.message}`, { cause: error });
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** The node's network: a namespace and a veth pair whose /30 is unused on this host. */
interface NodeNetwork {
  netns: string;
  hostInterface: string;
  /** The host's end: kube-apiserver listens here. */
  hostAddress: string;
  /** The node's end: its InternalIP, where NodePorts and the kubelet listen. */
  nodeAddress: string;
  /** Pod addresses, on the bridge inside the namespace; routed from the host through the veth. */
  podSubnet: string;
}

/** Addresses no other node of this host uses: a /30 for the veth and a /24 for the pods. */
async function pickNetwork(id: string): Promise<NodeNetwork> {
  const routes = await sh("ip", ["-4", "route", "show"]);
  const inUse = (subnet: string) => routes.split("\n").some((line) => line.startsWith(`${subnet} `));
  for (;;) {
    const [a, b, c] = [randomInt(256), 4 * randomInt(64), randomInt(256)];
    const veth = `10.201.${a}.${b}/30`;
    const podSubnet = `10.202.${c}.0/24`;
    if (inUse(veth) || inUse(podSubnet)) continue;
    return {
      netns: `devicepass-${id}`,
      hostInterface: `dpn${id}h`,
      hostAddress: `10.201.${a}.${b + 1}`,
      nodeAddress: `10.201.${a}.${b + 2}`,
      podSubnet,
    };
  }
}

/** What the node runs from Debian's packages, by path: the message names what to install. */
const debianTools: [path: string, pkg: string][] = [
  ["/usr/bin/containerd", "containerd"],
  ["/usr/bin/ctr", "containerd"],
  ["/usr/sbin/runc", "runc"],
  ["/usr/lib/cni/bridge", "containernetworking-plugins"],
  ["/usr/lib/cni/host-local", "containernetworking-plugins"],
  ["/usr/lib/cni/loopback", "containernetworking-plugins"],
  ["/usr/lib/cni/portmap", "containernetworking-plugins"],
  ["/usr/sbin/iptables", "iptables"],
];

function checkDebianTools(): void {
  const missing = new Set<string>();
  for (const [path, pkg] of debianTools) if (!existsSync(path)) missing.add(pkg);
  if (missing.size > 0) throw new Error(`the node needs Debian's ${[...missing].join(", ")}: apt-get install ${[...missing].join(" ")}`); // prettier-ignore
  if (process.getuid?.() !== 0) throw new Error("the node runs containerd and the kubelet: run as root");
}

/** The cgroup v1 hierarchies mounted under /sys/fs/cgroup (cpu, memory, …, name=systemd). */
async function cgroupHierarchies(): Promise<string[]> {
  const mounts = await readFile("/proc/self/mounts", "utf8");
  return mounts
    .split("\n")
    .map((line) => line.split(" "))
    .filter((f) => f[2] === "cgroup" && f[1]?.startsWith("/sys/fs/cgroup/"))
    .map((f) => f[1]!);
}

/** A control plane and one real node serving it, all owned by this process. */
export class NodeCluster {
  readonly plane: ControlPlane;
  readonly kubectl: Kubectl;
  readonly images: Record<ImageName, BuiltImage>;
  readonly timings: NodeTimings;
  /** The node's InternalIP: the host reaches NodePort Services there. */
  readonly nodeAddress: string;
  /** A folder for the caller's files (certificates, manifests), removed with the node. */
  readonly workDir: string;
  private readonly node: ClusterNode;

  private constructor(
    plane: ControlPlane,
    node: ClusterNode,
    images: Record<ImageName, BuiltImage>,
    timings: NodeTimings,
  ) {
    this.plane = plane;
    this.node = node;
    this.images = images;
    this.timings = timings;
    this.nodeAddress = node.network.nodeAddress;
    this.workDir = node.workDir;
    this.kubectl = kubectlFor(plane.binaries.kubectl, plane.kubeconfigPath);
  }

  /** Builds or finds the images and binaries, starts the node's network, the control plane and the node. */
  static async start(options: NodeClusterOptions = {}): Promise<NodeCluster> {
    const log = options.log ?? (() => {});
    checkDebianTools();
    const imagesStarted = performance.now();
    const [images, binaries] = await Promise.all([buildImages(), resolveNodeBinaries()]);
    const imagesMs = Math.round(performance.now() - imagesStarted);
    log(`images and node binaries ready in ${imagesMs} ms`);

    const node = await ClusterNode.prepare(binaries, images, options.syncFrequency ?? defaultSyncFrequency);
    let plane: ControlPlane | undefined;
    try {
      const planeStarted = performance.now();
      plane = await ControlPlane.start({
        log,
        node: { apiServerAddress: node.network.hostAddress, schedulerBinary: binaries["kube-scheduler"] },
      });
      const controlPlaneMs = Math.round(performance.now() - planeStarted);
      const nodeStarted = performance.now();
      await node.start(plane, log);
      const nodeMs = Math.round(performance.now() - nodeStarted);
      log(`node ${nodeName} Ready at ${node.network.nodeAddress} in ${nodeMs} ms`);
      return new NodeCluster(plane, node, images, { imagesMs, controlPlaneMs, nodeMs });
    } catch (error) {
      await node.stop();
      await plane?.stop();
      throw error;
    }
  }

  /** Restarts the kubelet with another syncFrequency; running pods stay. */
  async restartKubelet(syncFrequency: string): Promise<void> {
    await this.node.restartKubelet(syncFrequency);
  }

  /** The ends of the node's logs (kubelet, containerd, kube-proxy), for failure messages. */
  async logs(lines = 40): Promise<string> {
    return this.node.logs(lines);
  }

  /** Stops the node (its pods, containerd, the network namespace), then the control plane. Idempotent. */
  async stop(): Promise<void> {
    await this.node.stop();
    await this.plane.stop();
  }
}

/** containerd, kubelet and kube-proxy in the node's folder and network namespace. */
class ClusterNode {
  readonly network: NodeNetwork;
  readonly workDir: string;
  private readonly dir: string;
  private readonly cgroupRoot: string;
  private readonly binaries: NodeBinaries;
  private readonly images: Record<ImageName, BuiltImage>;
  private syncFrequency: string;
  private containerd: ManagedProcess | undefined;
  private kubelet: ManagedProcess | undefined;
  private kubeProxy: ManagedProcess | undefined;
  private plane: ControlPlane | undefined;
  private stopped = false;

  private constructor(
    dir: string,
    id: string,
    network: NodeNetwork,
    binaries: NodeBinaries,
    images: Record<ImageName, BuiltImage>,
    syncFrequency: string,
  ) {
    this.dir = dir;
    this.workDir = join(dir, "work");
    this.network = network;
    this.cgroupRoot = `/devicepass-${id}`;
    this.binaries = binaries;
    this.images = images;
    this.syncFrequency = syncFrequency;
  }

  private get socket(): string {
    return join(this.dir, "containerd.sock");
  }

  /** Makes the folder (watched by the watchdog), the network namespace, the veth and the cgroup root. */
  static async prepare(
    binaries: NodeBinaries,
    images: Record<ImageName, BuiltImage>,
    syncFrequency: string,
  ): Promise<ClusterNode> {
    const dir = await mkdtemp(join(tmpdir(), "devicepass-node-"));
    await chmod(dir, 0o755);
    await mkdir(join(dir, "pids"));
    await mkdir(join(dir, "work"));
    const id = randomBytes(3).toString("hex");
    const network = await pickNetwork(id);
    const node = new ClusterNode(dir, id, network, binaries, images, syncFrequency);
    // Written first: the cleanup finds everything below by these names.
    await writeFile(
      join(dir, "node.env"),
      [
        `NETNS=${network.netns}`,
        `HOST_INTERFACE=${network.hostInterface}`,
        `CGROUP_ROOT=${node.cgroupRoot}`,
        `CONTAINERD_SOCKET=${node.socket}`,
        "",
      ].join("\n"),
    );
    spawn("bash", [watchdogScript, String(process.pid), dir, cleanupScript], {
      detached: true,
      stdio: "ignore",
    }).unref();
    try {
      await node.createNetwork();
      await node.createCgroupRoot();
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  private async createNetwork(): Promise<void> {
    const { netns, hostInterface, hostAddress, nodeAddress } = this.network;
    const nodeInterface = `${hostInterface.slice(0, -1)}n`;
    await sh("ip", ["netns", "add", netns]);
    await sh("ip", [
      "link",
      "add",
      hostInterface,
      "type",
      "veth",
      "peer",
      "name",
      nodeInterface,
      "netns",
      netns,
    ]);
    await sh("ip", ["addr", "add", `${hostAddress}/30`, "dev", hostInterface]);
    await sh("ip", ["link", "set", hostInterface, "up"]);
    await sh("ip", ["route", "add", this.network.podSubnet, "via", nodeAddress, "dev", hostInterface]);
    const inNode = (args: string[]) => sh("ip", ["-n", netns, ...args]);
    await inNode(["addr", "add", `${nodeAddress}/30`, "dev", nodeInterface]);
    await inNode(["link", "set", nodeInterface, "up"]);
    await inNode(["link", "set", "lo", "up"]);
    // Routing between the pods' bridge and the veth, and iptables on bridged traffic (a pod
    // reaching another pod through a Service), inside the namespace only.
    const netnsPath = `/run/netns/${netns}`;
    await sh("nsenter", [`--net=${netnsPath}`, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    await sh("nsenter", [`--net=${netnsPath}`, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"]);
  }

  /** The kubelet's cgroupRoot must exist in every hierarchy; cpuset children start with no CPUs. */
  private async createCgroupRoot(): Promise<void> {
    for (const hierarchy of await cgroupHierarchies()) {
      const path = join(hierarchy, this.cgroupRoot);
      await mkdir(path, { recursive: true });
      if (hierarchy.endsWith("/cpuset")) {
        for (const file of ["cpuset.cpus", "cpuset.mems"])
          await writeFile(join(path, file), await readFile(join(hierarchy, file), "utf8"));
      }
    }
  }

  /** A command inside the node's network namespace (nsenter execs it: the pid is the command's). */
  private inNetns(name: string, command: string, args: string[]): ManagedProcess {
    return new ManagedProcess(name, "nsenter", [`--net=/run/netns/${this.network.netns}`, "--", command, ...args], this.dir); // prettier-ignore
  }

  async start(plane: ControlPlane, log: (line: string) => void): Promise<void> {
    this.plane = plane;
    await this.writeContainerdConfig();
    await this.writeCniConfig();
    // Images unpack into memory: faster than the shared disk, and gone with one unmount.
    await mkdir(join(this.dir, "containerd"));
    await sh("mount", [
      "-t",
      "tmpfs",
      "-o",
      "size=8g,mode=0700",
      "devicepass-containerd",
      join(this.dir, "containerd"),
    ]);
    this.containerd = this.inNetns("containerd", "containerd", [
      "--config",
      join(this.dir, "containerd.toml"),
    ]);
    await this.containerd.start();
    await waitFor("containerd's socket", async () => {
      await this.containerd!.assertRunning();
      return (await run("ctr", ["--address", this.socket, "version"]).then(() => true, () => false));
    }, 60_000); // prettier-ignore
    const importStarted = performance.now();
    for (const image of Object.values(this.images))
      await sh("ctr", ["--address", this.socket, "-n", "k8s.io", "images", "import", image.archive]);
    log(`images imported into containerd in ${Math.round(performance.now() - importStarted)} ms`);

    const [kubeletKubeconfig, proxyKubeconfig] = await Promise.all([
      plane.kubeconfigFor(`system:node:${nodeName}`, ["system:nodes"]),
      plane.kubeconfigFor("system:kube-proxy"),
    ]);
    await this.writeKubeletConfig();
    this.kubelet = this.inNetns("kubelet", this.binaries.kubelet, this.kubeletArgs(kubeletKubeconfig));
    await this.kubelet.start();
    await this.writeKubeProxyConfig(proxyKubeconfig);
    this.kubeProxy = this.inNetns("kube-proxy", this.binaries["kube-proxy"], [
      `--config=${join(this.dir, "kube-proxy.yaml")}`,
    ]);
    await this.kubeProxy.start();

    const kubectl = kubectlFor(plane.binaries.kubectl, plane.kubeconfigPath);
    await waitFor(`node ${nodeName} Ready`, async () => {
      await this.kubelet!.assertRunning();
      await this.kubeProxy!.assertRunning();
      const result = await kubectl.run(["get", "node", nodeName, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]); // prettier-ignore
      return result.code === 0 && result.stdout === "True";
    }, 120_000); // prettier-ignore
  }

  private async writeContainerdConfig(): Promise<void> {
    const d = this.dir;
    const cri = 'plugins."io.containerd.grpc.v1.cri"';
    await writeFile(
      join(d, "containerd.toml"),
      `# Generated by operator/harness/node.ts: containerd's state, sockets and netns mounts under this folder.
version = 2
root = "${d}/containerd/root"
state = "${d}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${this.socket}"
[ttrpc]
  address = "${this.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${d}/containerd/opt"
[${cri}]
  sandbox_image = "${this.images.pause.ref}"
  # No CAP_SYS_RESOURCE here: nothing may lower oom_score_adj, which runc would do for the sandbox.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [${cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${d}/cni/net.d"
  [${cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
`,
    );
  }

  private async writeCniConfig(): Promise<void> {
    const confDir = join(this.dir, "cni", "net.d");
    await mkdir(confDir, { recursive: true });
    const config = {
      cniVersion: "0.4.0",
      name: "devicepass",
      plugins: [
        {
          type: "bridge",
          bridge: "cni0",
          isGateway: true,
          // Pods reach kube-apiserver on the host as the node's address.
          ipMasq: true,
          hairpinMode: true,
          ipam: {
            type: "host-local",
            ranges: [[{ subnet: this.network.podSubnet }]],
            // Pods route everything through the bridge; the node's namespace drops what it has no route for.
            routes: [{ dst: "0.0.0.0/0" }],
            dataDir: join(this.dir, "cni", "ipam"),
          },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    };
    await writeFile(join(confDir, "10-devicepass.conflist"), JSON.stringify(config, null, 2));
  }

  private async writeKubeletConfig(): Promise<void> {
    const config = {
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      kind: "KubeletConfiguration",
      // cgroup v1 here (KEP-5573), and no systemd as PID 1.
      failCgroupV1: false,
      cgroupDriver: "cgroupfs",
      // Pods' cgroups under a root of this node's own, so that nodes side by side never meet.
      cgroupRoot: this.cgroupRoot,
      failSwapOn: false,
      containerRuntimeEndpoint: `unix://${this.socket}`,
      address: this.network.nodeAddress,
      readOnlyPort: 0,
      healthzBindAddress: "127.0.0.1",
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: false },
        x509: { clientCAFile: this.plane!.caCertFile },
      },
      authorization: { mode: "AlwaysAllow" },
      syncFrequency: this.syncFrequency,
      podLogsDir: join(this.dir, "pod-logs"),
      volumePluginDir: join(this.dir, "volume-plugins"),
      // A shared machine's disk and memory are not the node's to reclaim: no evictions, no image GC.
      evictionHard: { "memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      serializeImagePulls: false,
    };
    await writeFile(join(this.dir, "kubelet.yaml"), stringify(config));
  }

  private kubeletArgs(kubeconfig: string): string[] {
    return [
      `--config=${join(this.dir, "kubelet.yaml")}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${join(this.dir, "kubelet")}`,
      `--cert-dir=${join(this.dir, "kubelet-pki")}`,
      `--hostname-override=${nodeName}`,
      `--node-ip=${this.network.nodeAddress}`,
      "--v=1",
    ];
  }

  private async writeKubeProxyConfig(kubeconfig: string): Promise<void> {
    const config = {
      apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
      kind: "KubeProxyConfiguration",
      clientConnection: { kubeconfig },
      hostnameOverride: nodeName,
      mode: "iptables",
      clusterCIDR: this.network.podSubnet,
      nodePortAddresses: [`${this.network.nodeAddress}/32`],
      // The conntrack table is the host's: leave its limits and timeouts alone.
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: "0s", tcpCloseWaitTimeout: "0s" },
      healthzBindAddress: "127.0.0.1:10256",
      metricsBindAddress: "127.0.0.1:10249",
    };
    await writeFile(join(this.dir, "kube-proxy.yaml"), stringify(config));
  }

  async restartKubelet(syncFrequency: string): Promise<void> {
    if (!this.kubelet || !this.plane) throw new Error("the node is not running");
    this.syncFrequency = syncFrequency;
    await this.kubelet.stop();
    await this.writeKubeletConfig();
    await this.kubelet.start();
  }

  async logs(lines: number): Promise<string> {
    const parts: string[] = [];
    for (const process of [this.kubelet, this.containerd, this.kubeProxy])
      if (process) parts.push(`--- ${process.name}\n${await process.tail(lines)}`);
    return parts.join("\n");
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const process of [this.kubeProxy, this.kubelet, this.containerd]) await process?.stop();
    await sh("bash", [cleanupScript, this.dir]);
  }
}

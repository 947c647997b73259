// A fault test's own world: a real control plane it may break (etcd and kube-apiserver, no
// controller-manager, so no garbage collector can hide an orphan the operator left), the CRDs, a
// MailDomain admitting the mail namespace, and a workload driver that keeps retrying through outages.
import { join } from "node:path";
import { ControlPlane } from "../../harness/control-plane.ts";
import { kubectlFor } from "../../harness/kubectl.ts";
import { apiVersion, kinds, rotateAnnotation } from "../../src/api/names.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { ApiError } from "../../src/kube/errors.ts";
import { named, resources } from "../../src/kube/resources.ts";
export { freePort } from "../../harness/net.ts";
export { pool } from "../../harness/pool.ts";

const crds = join(import.meta.dirname, "..", "..", "..", "crds");
export const domain = "example.com";

export class FaultCluster {
  readonly plane: ControlPlane;
  readonly client: KubeClient;
  readonly namespace = "mail";
  readonly passdbNamespace = "devicepass-system";
  readonly passdbShards = 8;

  private constructor(plane: ControlPlane, client: KubeClient) {
    this.plane = plane;
    this.client = client;
  }

  static async start(): Promise<FaultCluster> {
    const plane = await ControlPlane.start({ controllerManager: false });
    try {
      const kubectl = kubectlFor(plane.binaries.kubectl, plane.kubeconfigPath);
      await kubectl.ok(["apply", "--server-side", "-f", crds]);
      await kubectl.ok(["wait", "--for=condition=Established", "--timeout=60s", "-f", crds]);
      const client = await KubeClient.fromKubeconfig(plane.kubeconfigPath, "fault-test");
      const cluster = new FaultCluster(plane, client);
      for (const ns of [cluster.namespace, cluster.passdbNamespace])
        await client.create(resources.namespaces, {
          apiVersion: "v1",
          kind: "Namespace",
          metadata: { name: ns },
        });
      // The tenant boundary the operator enforces by default: example.com may live in "mail".
      await client.create(resources.mailDomains, {
        apiVersion,
        kind: "MailDomain",
        metadata: { name: domain },
        spec: { namespaces: [cluster.namespace] },
      });
      return cluster;
    } catch (error) {
      await plane.stop();
      throw error;
    }
  }

  /** The command line of an operator replica, as the chart would run it (leader election on). */
  operatorArgs(kubeconfig = this.plane.kubeconfigPath, extra: string[] = []): string[] {
    return [
      "--kubeconfig",
      kubeconfig,
      "--namespace",
      this.namespace,
      "--passdb-namespace",
      this.passdbNamespace,
      "--passdb-shards",
      String(this.passdbShards),
      "--argon2-memory-kib",
      "1024",
      "--argon2-iterations",
      "1",
      "--log-level",
      "debug",
      "--leader-elect",
      ...extra,
    ];
  }

  /** The holder of the leader Lease, read from the API server. */
  async leaseHolder(): Promise<{ holder: string; renewTime: string | undefined } | undefined> {
    try {
      const lease = await this.client.get<{ spec?: { holderIdentity?: string; renewTime?: string } }>({
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        namespace: this.passdbNamespace,
        name: "devicepass-leader",
      });
      return { holder: lease.spec?.holderIdentity ?? "", renewTime: lease.spec?.renewTime };
    } catch (error) {
      if (error instanceof ApiError && error.kind === "NotFound") return undefined;
      throw error;
    }
  }

  async stop(): Promise<void> {
    await this.client.close();
    await this.plane.stop();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs a user's request until the API server takes it: through restarts of kube-apiserver and
 * etcd, a lost answer included (a create that finds the object, a delete that finds none, done).
 */
export async function persistently(
  what: string,
  request: () => Promise<unknown>,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await request();
      return;
    } catch (error) {
      if (error instanceof ApiError && (error.kind === "AlreadyExists" || error.kind === "NotFound")) return;
      if (Date.now() > deadline) throw new Error(`${what}: ${(error as Error).message}`, { cause: error });
      await sleep(250);
    }
  }
}

export interface ExpectedDevice {
  address: string;
  /** How many passwords the operator must have generated after the first one. */
  rotations: number;
  rotate: string | undefined;
}

/**
 * What the user did, as the invariant must find it: the devices that exist and how often each
 * password had to be regenerated. Every change is made at most once per device between two
 * invariant checks, so that each one must be acted on exactly once.
 */
export class Workload {
  readonly devices = new Map<string, ExpectedDevice>();
  readonly addresses = new Map<string, { address: string; rotate: string | undefined }>();
  readonly deleted = new Set<string>();
  private readonly cluster: FaultCluster;
  private serial = 0;

  constructor(cluster: FaultCluster) {
    this.cluster = cluster;
  }

  private get ns(): string {
    return this.cluster.namespace;
  }

  async createAddress(name: string): Promise<void> {
    const address = `${name}@${domain}`;
    await persistently(`create address ${name}`, () =>
      this.cluster.client.create(
        { ...resources.mailAddresses, namespace: this.ns },
        {
          apiVersion,
          kind: kinds.mailAddress.kind,
          metadata: { name, namespace: this.ns },
          spec: { address },
        },
      ),
    );
    this.addresses.set(name, { address, rotate: undefined });
  }

  async createDevice(name: string, addressName: string): Promise<void> {
    this.devices.set(name, { address: addressName, rotations: 0, rotate: undefined });
    await persistently(`create device ${name}`, () =>
      this.cluster.client.create(
        { ...resources.mailDevices, namespace: this.ns },
        {
          apiVersion,
          kind: kinds.mailDevice.kind,
          metadata: { name, namespace: this.ns },
          spec: { address: addressName, displayName: `Device ${name}`, icon: "phone" },
        },
      ),
    );
  }

  /** A new rotate value on the device: exactly one new password. */
  async rotateDevice(name: string): Promise<void> {
    const device = this.devices.get(name)!;
    const value = `r${++this.serial}`;
    await persistently(`rotate ${name}`, () =>
      this.cluster.client.mergePatch(
        named(resources.mailDevices, this.ns, name),
        { metadata: { annotations: { [rotateAnnotation]: value } } },
        "fault-test",
      ),
    );
    device.rotate = value;
    device.rotations++;
  }

  /** A new rotate value on the address: one new password for each of its devices. */
  async rotateAddress(name: string): Promise<void> {
    const value = `a${++this.serial}`;
    await persistently(`rotate address ${name}`, () =>
      this.cluster.client.mergePatch(
        named(resources.mailAddresses, this.ns, name),
        { metadata: { annotations: { [rotateAnnotation]: value } } },
        "fault-test",
      ),
    );
    this.addresses.get(name)!.rotate = value;
    for (const device of this.devices.values()) if (device.address === name) device.rotations++;
  }

  async deleteDevice(name: string): Promise<void> {
    this.devices.delete(name);
    this.deleted.add(name);
    await persistently(`delete ${name}`, () =>
      this.cluster.client.delete(named(resources.mailDevices, this.ns, name)),
    );
  }

  /** Live device names, sorted. */
  deviceNames(): string[] {
    return [...this.devices.keys()].sort();
  }
}

/** `count` distinct items of `items`, picked at random. */
export function sample<T>(items: readonly T[], count: number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, count);
}

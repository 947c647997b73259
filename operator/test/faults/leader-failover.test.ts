// Two replicas with leader election, as the chart runs them: one reconciles, the other keeps warm
// caches and writes nothing. The leader SIGKILLed mid-rotation: the standby takes over once the
// Lease expires, and no rotation happens twice. The leader sent SIGTERM: it drains, releases the
// Lease, exits 0, and the standby takes over within a retry period.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProxy } from "../../harness/fault-proxy.ts";
import { defaultLeaseTimings } from "../../src/runtime/leader-election.ts";
import { FaultCluster, Workload, freePort, pool, sample } from "./cluster.ts";
import { SecretAudit, plaintextIn, waitForInvariant } from "./invariant.ts";
import { OperatorProcess } from "../../harness/operator-process.ts";

/** Restarted after an exit of its own like a pod (the kubelet would wait 10 s at first). */
const restartLikeAPod = 500;
import { report } from "./report.ts";

interface Slot {
  replica: OperatorProcess;
  /** Each replica reaches the API server through its own proxy, which counts its requests. */
  proxy: FaultProxy;
  metricsPort: number;
  healthPort: number;
}

let cluster: FaultCluster;
let workload: Workload;
let audit: SecretAudit;
const slots: Slot[] = [];
const logs: string[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const addressNames = Array.from({ length: 10 }, (_, i) => `ha${i}`);
const { leaseDurationMs, retryPeriodMs } = defaultLeaseTimings;

async function startSlot(name: string): Promise<Slot> {
  const proxy = await FaultProxy.start(cluster.plane.kubeconfigPath);
  const kubeconfig = `${cluster.plane.dir}/kubeconfig-${name}`;
  await proxy.writeKubeconfig(kubeconfig);
  const metricsPort = await freePort();
  const healthPort = await freePort();
  const replica = await OperatorProcess.start({
    restartDelayMs: restartLikeAPod,
    name,
    args: cluster.operatorArgs(kubeconfig, [
      "--metrics-addr", `127.0.0.1:${metricsPort}`,
      "--health-addr", `127.0.0.1:${healthPort}`,
    ]), // prettier-ignore
  });
  return { replica, proxy, metricsPort, healthPort };
}

async function leaderSlot(): Promise<{ leader: Slot; standby: Slot }> {
  const lease = await cluster.leaseHolder();
  const ids = await Promise.all(slots.map((s) => s.replica.identity()));
  const i = ids.findIndex((id) => id !== undefined && id === lease?.holder);
  if (i < 0)
    throw new Error(`no replica holds the Lease (holder ${lease?.holder}, replicas ${ids.join(", ")})`);
  return { leader: slots[i]!, standby: slots[1 - i]! };
}

async function leaderGauge(slot: Slot): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${slot.metricsPort}/metrics`)).text();
  const match = /^leader_election_master_status\{name="devicepass-leader"\} (\d+)$/m.exec(text);
  return Number(match?.[1]);
}

async function readyz(slot: Slot): Promise<number> {
  return (await fetch(`http://127.0.0.1:${slot.healthPort}/readyz`)).status;
}

/** Requests other than the Lease's that could change something: a standby must send none. */
function writesSince(slot: Slot, since: number): string[] {
  return slot.proxy
    .between(since)
    .filter((r) => r.method !== "GET" && !r.path.includes("/leases/") && !r.path.endsWith("/leases"))
    .map((r) => `${r.method} ${r.path}`);
}

const collections = /\/(mailaddresses|maildevices|maildomains|secrets|namespaces)$/;

/** LIST requests (not watches) of `slot` in [from, to): a warm cache needs none to take over. */
function listsBetween(slot: Slot, from: number, to: number): string[] {
  return slot.proxy
    .between(from, to)
    .filter((r) => r.method === "GET" && !r.watch && collections.test(r.path))
    .map((r) => r.path);
}

/** Waits until `slot`'s current process logs "became the leader"; returns the log time (epoch ms). */
async function tookOver(slot: Slot): Promise<number> {
  const line = await slot.replica.waitForMessage("became the leader", leaseDurationMs * 3);
  return line.time as number;
}

async function rotations(count: number): Promise<Promise<unknown>> {
  const names = sample(workload.deviceNames(), count + 2);
  return Promise.all([
    pool(names.slice(0, count), 4, (n) => workload.rotateDevice(n)),
    pool(names.slice(count), 1, (n) => workload.deleteDevice(n)),
  ]);
}

beforeAll(async () => {
  cluster = await FaultCluster.start();
  workload = new Workload(cluster);
  audit = SecretAudit.start(cluster.client, cluster.namespace);
  slots.push(await startSlot("replica-a"));
  await slots[0]!.replica.waitForMessage("became the leader");
  slots.push(await startSlot("replica-b"));
  await slots[1]!.replica.waitForMessage("waiting to become the leader");
  for (const name of addressNames) await workload.createAddress(name);
  const devices = Array.from({ length: 60 }, (_, i) => `ha-dev${String(i).padStart(2, "0")}`);
  await pool(devices, 8, (name) => workload.createDevice(name, addressNames[Number(name.slice(6)) % 10]!));
  await waitForInvariant(cluster, workload, audit);
});

afterAll(async () => {
  for (const slot of slots) {
    await slot.replica.stop();
    logs.push(await slot.replica.logText());
    await slot.replica.dispose();
    await slot.proxy.stop();
  }
  await audit?.stop();
  await cluster?.stop();
  expect(plaintextIn(logs.join("\n"), audit)).toEqual([]);
});

describe("two replicas", () => {
  it("one leads and reconciles; the standby is ready, keeps its caches and writes nothing", async () => {
    const { leader, standby } = await leaderSlot();
    expect(await leaderGauge(leader)).toBe(1);
    expect(await leaderGauge(standby)).toBe(0);
    expect(await readyz(leader)).toBe(200);
    expect(await readyz(standby)).toBe(200);
    const standbyStarted = standby.replica.starts.at(-1)!;
    const changes = await rotations(10);
    await changes;
    await waitForInvariant(cluster, workload, audit);
    expect(writesSince(standby, standbyStarted)).toEqual([]);
    // Its caches follow every change through open watches.
    expect(standby.proxy.between(standbyStarted).filter((r) => r.watch).length).toBeGreaterThan(0);
  });

  it("the leader SIGKILLed during rotations: the standby takes over when the Lease expires, no rotation twice", async () => {
    // takeoverMs: kill → the standby's "became the leader"; sinceRenewMs: the Lease's last renewal →
    // that; recoverMs: kill → the invariant holds again.
    const failovers: { takeoverMs: number; sinceRenewMs: number; recoverMs: number }[] = [];
    for (let round = 0; round < 3; round++) {
      const { leader, standby } = await leaderSlot();
      const changes = await rotations(20);
      await sleep(200 + Math.random() * 1300);
      const lease = await cluster.leaseHolder();
      const killedAt = Date.now();
      const killedPerf = performance.now();
      await leader.replica.kill("SIGKILL");
      const takeoverAt = await tookOver(standby);
      const takeoverPerf = performance.now();
      const takeoverMs = takeoverAt - killedAt;
      // The standby sees the last renewal at its next try (a jittered retry period at most), waits
      // a lease duration from then, and notices the expiry at its next try again.
      expect(takeoverMs).toBeLessThan(leaseDurationMs + 2 * 1.2 * retryPeriodMs + 1000);
      const since = standby.proxy.requests.length;
      await leader.replica.restart();
      await leader.replica.waitForMessage("waiting to become the leader");
      await changes;
      const recovery = await waitForInvariant(cluster, workload, audit);
      expect(await leaderGauge(standby)).toBe(1);
      expect(await leaderGauge(leader)).toBe(0);
      expect(writesSince(leader, leader.replica.starts.at(-1)!)).toEqual([]);
      // The new leader reconciled from the caches it kept warm: no relist at takeover.
      expect(listsBetween(standby, takeoverPerf - 3000, recovery.heldAt)).toEqual([]);
      expect(standby.proxy.requests.length).toBeGreaterThan(since);
      failovers.push({
        takeoverMs,
        sinceRenewMs: lease?.renewTime ? takeoverAt - Date.parse(lease.renewTime) : NaN,
        recoverMs: Math.round(recovery.heldAt - killedPerf),
      });
    }
    report("leader SIGKILLed during 20 rotations and 2 deletions, 3 times", {
      leaseDurationMs,
      failovers,
      devices: workload.devices.size,
      auditGaps: audit.gaps,
    });
  });

  it("the leader sent SIGTERM during rotations: it drains, releases the Lease, exits 0; failover is immediate", async () => {
    const { leader, standby } = await leaderSlot();
    const changes = await rotations(20);
    await sleep(100 + Math.random() * 500);
    const signalledAt = Date.now();
    const exit = await leader.replica.kill("SIGTERM");
    const exitedAt = Date.now();
    expect(exit.code).toBe(0);
    const lines = await leader.replica.currentLines();
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(["released the leader Lease", "stopped"]));
    const takeoverAt = await tookOver(standby);
    // Released: the standby takes the Lease at its next try, within one jittered retry period.
    expect(takeoverAt - exitedAt).toBeLessThan(1.2 * retryPeriodMs + 1000);
    await leader.replica.restart();
    await changes;
    const recovery = await waitForInvariant(cluster, workload, audit);
    report("leader sent SIGTERM during 20 rotations and 2 deletions", {
      drainMs: exitedAt - signalledAt,
      exitCode: exit.code,
      takeoverMs: takeoverAt - exitedAt,
      invariantMs: recovery.ms,
      ...recovery.report,
      auditGaps: audit.gaps,
    });
  });
});

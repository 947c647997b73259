// The API server throttling and failing the operator's requests (429 and 503 with Retry-After, as
// API Priority and Fairness and an overloaded server answer), through a proxy that counts every
// request: the operator retries with backoff, never in a hot loop, and converges once it may.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProxy, type ProxiedRequest } from "../../harness/fault-proxy.ts";
import { FaultCluster, Workload, pool, sample } from "./cluster.ts";
import { SecretAudit, plaintextIn, waitForInvariant } from "./invariant.ts";
import { OperatorProcess } from "../../harness/operator-process.ts";

/** Restarted after an exit of its own like a pod (the kubelet would wait 10 s at first). */
const restartLikeAPod = 500;
import { report } from "./report.ts";

let cluster: FaultCluster;
let workload: Workload;
let audit: SecretAudit;
let proxy: FaultProxy;
let operator: OperatorProcess;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const addressNames = Array.from({ length: 8 }, (_, i) => `busy${i}`);
let created = 0;
const isLease = (r: { path: string }) => /\/leases(\/|$)/.test(r.path);
/** Collections the informers list and watch (a GET of one of these without ?watch is a relist). */
const collections = /\/(mailaddresses|maildevices|maildomains|secrets|namespaces)$/;

async function createDevices(count: number): Promise<void> {
  const names = Array.from({ length: count }, () => `t${String(created++).padStart(3, "0")}`);
  await pool(names, 4, (n) => workload.createDevice(n, addressNames[Number(n.slice(1)) % 8]!));
}

/**
 * Devices changed since the invariant last held: each is changed at most once until it holds
 * again. (Two rotate values before the operator can act are one rotation, rightly: level-based.)
 */
const touched = new Set<string>();

/** Some user changes the operator must act on (made directly, not through the proxy). */
async function userChanges(): Promise<void> {
  const names = workload.deviceNames().filter((n) => !touched.has(n));
  const toDelete = sample(names, 2);
  const toRotate = sample(
    names.filter((n) => !toDelete.includes(n)),
    10,
  );
  for (const n of [...toDelete, ...toRotate]) touched.add(n);
  const before = created;
  await Promise.all([
    pool(toRotate, 3, (n) => workload.rotateDevice(n)),
    pool(toDelete, 1, (n) => workload.deleteDevice(n)),
    createDevices(3),
  ]);
  for (let i = before; i < created; i++) touched.add(`t${String(i).padStart(3, "0")}`);
}

interface Traffic {
  requests: number;
  refused: number;
  /** The most requests of one verb to one path (retries of one key). */
  maxPerPath: number;
  /** The shortest time between two refused requests of one verb to one path. */
  minRetryGapMs: number;
  /** Which verb and path that was. */
  fastestRetry: string;
  /** Lists and watches the informers started. */
  listWatches: number;
}

function traffic(requests: ProxiedRequest[]): Traffic {
  const byPath = new Map<string, ProxiedRequest[]>();
  for (const r of requests) {
    // Event creations share one path across objects; they are not retries of one another.
    if (r.method === "POST" && r.path.endsWith("/events")) continue;
    const key = `${r.method} ${r.path}${r.watch ? "?watch" : ""}`;
    byPath.set(key, [...(byPath.get(key) ?? []), r]);
  }
  let minRetryGapMs = Infinity;
  let fastestRetry = "";
  for (const [key, list] of byPath)
    for (let i = 1; i < list.length; i++)
      if (list[i - 1]!.injected && list[i]!.at - list[i - 1]!.at < minRetryGapMs) {
        minRetryGapMs = list[i]!.at - list[i - 1]!.at;
        fastestRetry = key;
      }
  return {
    requests: requests.length,
    refused: requests.filter((r) => r.injected).length,
    maxPerPath: Math.max(0, ...[...byPath.values()].map((l) => l.length)),
    minRetryGapMs: Math.round(minRetryGapMs),
    fastestRetry,
    listWatches: requests.filter((r) => r.method === "GET" && (r.watch || collections.test(r.path))).length,
  };
}

beforeAll(async () => {
  cluster = await FaultCluster.start();
  workload = new Workload(cluster);
  audit = SecretAudit.start(cluster.client, cluster.namespace);
  proxy = await FaultProxy.start(cluster.plane.kubeconfigPath);
  const kubeconfig = `${cluster.plane.dir}/kubeconfig-throttled`;
  await proxy.writeKubeconfig(kubeconfig);
  operator = await OperatorProcess.start({
    restartDelayMs: restartLikeAPod,
    name: "operator",
    args: cluster.operatorArgs(kubeconfig),
  });
  await operator.waitForMessage("became the leader");
  for (const name of addressNames) await workload.createAddress(name);
  await createDevices(64);
  await waitForInvariant(cluster, workload, audit);
});

afterAll(async () => {
  proxy?.setFaults(undefined);
  const keep = process.env.DEVICEPASS_FAULT_LOGS;
  if (keep && proxy) {
    await mkdir(keep, { recursive: true });
    await writeFile(join(keep, `throttling-requests-${Date.now()}.json`), JSON.stringify(proxy.requests));
  }
  const exit = await operator?.stop();
  const logs = (await operator?.logText()) ?? "";
  await audit?.stop();
  await operator?.dispose();
  await proxy?.stop();
  await cluster?.stop();
  expect(plaintextIn(logs, audit)).toEqual([]);
  expect(exit?.code).toBe(0);
});

describe("the API server throttling and failing requests", () => {
  it("backs off without a hot loop while refused, and converges afterwards", async () => {
    const phases: Record<string, Traffic & { seconds: number }> = {};
    const phase = async (name: string, seconds: number, during: () => Promise<unknown>) => {
      const from = performance.now();
      await Promise.all([during(), sleep(seconds * 1000)]);
      phases[name] = { seconds, ...traffic(proxy.between(from).filter((r) => !isLease(r))) };
      return phases[name];
    };

    // Every request but the Lease's refused (a FlowSchema would keep leader election going);
    // the watches already open keep streaming, so changes arrive and their reconciles fail.
    proxy.setFaults({ rate: 1, statuses: [429, 503], retryAfterSeconds: 1, match: (r) => !isLease(r) });
    const refused = await phase("all refused, watches open", 20, userChanges);
    // No hot loop: about one try per second per request at most (Retry-After, then the growing
    // backoff); a new event may retry a key early, as in client-go's work queue.
    expect(refused.maxPerPath).toBeLessThanOrEqual(21);
    expect(refused.requests).toBeLessThan(1000);
    expect(refused.listWatches).toBe(0);

    // Watches accepted and ended at once (a load balancer's idle timeout): no hot loop either.
    proxy.setFaults({ rate: 1, statuses: [200], endWatches: true, match: (r) => r.watch });
    proxy.resetConnections();
    const ended = await phase("watches ended at once", 10, userChanges);
    expect(ended.listWatches).toBeLessThanOrEqual(6 * 12);

    // Everything but the Lease refused and every connection cut: the informers must rewatch,
    // refused too.
    proxy.setFaults({ rate: 1, statuses: [429, 503], retryAfterSeconds: 1, match: (r) => !isLease(r) });
    proxy.resetConnections();
    const cut = await phase("all refused, connections cut", 15, userChanges);
    expect(cut.maxPerPath).toBeLessThanOrEqual(16);
    expect(cut.listWatches).toBeLessThanOrEqual(6 * 12);

    // A third of everything refused, the Lease included: slower, but it must get through.
    proxy.setFaults({ rate: 0.33, statuses: [429, 503], retryAfterSeconds: 1 });
    await phase("a third refused", 20, userChanges);

    proxy.setFaults(undefined);
    const recovered = performance.now();
    const recovery = await waitForInvariant(cluster, workload, audit);
    report("API server refusing requests (429/503, Retry-After 1 s), then cutting and ending watches", {
      phases,
      recoverMs: Math.round(recovery.heldAt - recovered),
      ...recovery.report,
      operatorExits: operator.exits.map((e) => e.code),
      auditGaps: audit.gaps,
    });
    expect(operator.exits).toEqual([]);
  });
});

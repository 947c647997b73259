// Leader election against the real API server, with short timings: one leader at a time, an
// immediate handover on release, a leader that cannot renew gives up at its renew deadline, and a
// candidate told to stop never leads. The fault proxy stands between one candidate and the server.
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { FaultProxy } from "../../harness/fault-proxy.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { createLogger } from "../../src/log.ts";
import type { Lease } from "../../src/kube/objects.ts";
import { LeaderElector, type LeaseTimings } from "../../src/runtime/leader-election.ts";
import { adminKubectl, eventually, withNamespace } from "../support.ts";

const kubectl = adminKubectl();
const timings: LeaseTimings = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };
let ns: { name: string; dispose: () => Promise<void> };
let proxy: FaultProxy;
let direct: KubeClient;
let proxied: KubeClient;
const electors: LeaderElector[] = [];

interface Candidate {
  elector: LeaderElector;
  events: { what: "started" | "stopped"; at: number }[];
}

function candidate(client: KubeClient, identity: string, lease: string): Candidate {
  const events: Candidate["events"] = [];
  const elector = new LeaderElector({
    client,
    namespace: ns.name,
    name: lease,
    identity,
    timings,
    log: createLogger("silent"),
    onStartedLeading: () => events.push({ what: "started", at: performance.now() }),
    onStoppedLeading: () => events.push({ what: "stopped", at: performance.now() }),
  });
  electors.push(elector);
  elector.start();
  return { elector, events };
}

/** eventually() for a synchronous check. */
const until = (check: () => void, timeoutMs?: number, intervalMs?: number) =>
  eventually(() => Promise.resolve().then(check), timeoutMs, intervalMs);

async function lease(name: string): Promise<Lease> {
  return kubectl.json<Lease>(["get", "lease", name, "-n", ns.name]);
}

beforeAll(async () => {
  ns = await withNamespace(kubectl, "leader");
  proxy = await FaultProxy.start(inject("kubeconfig"));
  const proxyKubeconfig = join(inject("controlPlaneDir"), `kubeconfig-proxy-${ns.name}`);
  await proxy.writeKubeconfig(proxyKubeconfig);
  direct = await KubeClient.fromKubeconfig(inject("kubeconfig"));
  proxied = await KubeClient.fromKubeconfig(proxyKubeconfig);
});

afterEach(async () => {
  proxy.setFaults(undefined);
  await Promise.all(electors.splice(0).map((e) => e.stop({ release: true })));
});

afterAll(async () => {
  await proxy.stop();
  await direct.close();
  await proxied.close();
  await ns.dispose();
});

describe("leader election", () => {
  it("elects exactly one leader, recorded in the Lease", async () => {
    const a = candidate(direct, "a", "one-leader");
    const b = candidate(direct, "b", "one-leader");
    await until(() => expect(a.elector.isLeader || b.elector.isLeader).toBe(true));
    await new Promise((r) => setTimeout(r, 2 * timings.leaseDurationMs));
    expect([a.elector.isLeader, b.elector.isLeader].filter(Boolean)).toHaveLength(1);
    const leader = a.elector.isLeader ? "a" : "b";
    const spec = (await lease("one-leader")).spec!;
    expect(spec.holderIdentity).toBe(leader);
    expect(spec.leaseDurationSeconds).toBe(3);
    expect(spec.renewTime).toMatch(/\.\d{6}Z$/); // metav1.MicroTime
    expect(Date.now() - Date.parse(spec.renewTime!)).toBeLessThan(timings.leaseDurationMs);
  });

  it("hands over at once when the leader releases the Lease", async () => {
    const a = candidate(direct, "a", "release");
    await until(() => expect(a.elector.isLeader).toBe(true));
    const b = candidate(direct, "b", "release");
    await new Promise((r) => setTimeout(r, timings.retryPeriodMs * 2));
    expect(b.elector.isLeader).toBe(false);
    const released = performance.now();
    await a.elector.stop({ release: true });
    await until(() => expect(b.elector.isLeader).toBe(true), 5000, 20);
    // Within one jittered retry period, not after a lease duration.
    expect(performance.now() - released).toBeLessThan(timings.retryPeriodMs * 1.2 + 300);
    const spec = (await lease("release")).spec!;
    expect(spec.holderIdentity).toBe("b");
    expect(spec.leaseTransitions).toBe(1);
  });

  it("a leader that cannot renew stops at its renew deadline; the other takes over after the lease duration", async () => {
    const a = candidate(proxied, "a", "deadline");
    await until(() => expect(a.elector.isLeader).toBe(true));
    const b = candidate(direct, "b", "deadline");
    await new Promise((r) => setTimeout(r, timings.retryPeriodMs * 2));
    // The API server refuses everything from a (as API Priority and Fairness might).
    const cut = performance.now();
    proxy.setFaults({ rate: 1, statuses: [429, 503] });
    await until(() => expect(a.events.map((e) => e.what)).toEqual(["started", "stopped"]), 10_000);
    const stoppedAfter = a.events[1]!.at - cut;
    // No renewal for renewDeadline (counted from the last success, up to a retry period before the cut).
    expect(stoppedAfter).toBeGreaterThan(timings.renewDeadlineMs - timings.retryPeriodMs - 100);
    // It gave up before any other candidate could take the Lease (leaseDuration after its last
    // renewal, itself at most a retry period before the cut): the guarantee leader election gives.
    // How much sooner depends on the machine's scheduling, which an assertion must not time.
    expect(stoppedAfter).toBeLessThan(timings.leaseDurationMs);
    expect(a.elector.isLeader).toBe(false);
    await until(() => expect(b.elector.isLeader).toBe(true), 10_000, 20);
    // a gave up before b could take over: never two leaders.
    expect(b.events[0]!.at).toBeGreaterThan(a.events[1]!.at);
    expect(b.events[0]!.at - cut).toBeGreaterThan(timings.leaseDurationMs - timings.retryPeriodMs);
  });

  it("a candidate that stops acquiring never leads, even when the Lease is free", async () => {
    const a = candidate(direct, "a", "abstain");
    await until(() => expect(a.elector.isLeader).toBe(true));
    const b = candidate(direct, "b", "abstain");
    await b.elector.stopAcquiring();
    await a.elector.stop({ release: true });
    await new Promise((r) => setTimeout(r, timings.retryPeriodMs * 3));
    expect(b.events).toEqual([]);
    expect((await lease("abstain")).spec?.holderIdentity).toBe("");
  });
});

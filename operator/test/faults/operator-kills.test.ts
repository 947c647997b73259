// The operator SIGKILLed at random points while it rotates and revokes passwords, 24 times: right
// after its first write of a round, after a random delay, and again while it starts up. Each kill
// is followed by a restart and the invariant: nothing lost, nothing leaked, no rotation twice.
// One replica without leader election, restarted at once, so that two dozen kills fit the time
// budget (a restarted leader would wait out its old Lease; leader-failover.test.ts covers that).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultCluster, Workload, pool, sample } from "./cluster.ts";
import { SecretAudit, plaintextIn, waitForInvariant } from "./invariant.ts";
import { OperatorProcess } from "../../harness/operator-process.ts";

/** Restarted after an exit of its own like a pod (the kubelet would wait 10 s at first). */
const restartLikeAPod = 500;
import { report } from "./report.ts";

let cluster: FaultCluster;
let workload: Workload;
let audit: SecretAudit;
let operator: OperatorProcess;

const rounds = 24;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const addressNames = Array.from({ length: 10 }, (_, i) => `kill${i}`);
let created = 0;

async function createDevices(count: number): Promise<void> {
  const names = Array.from({ length: count }, () => `k${String(created++).padStart(4, "0")}`);
  await pool(names, 8, (name) =>
    workload.createDevice(name, addressNames[Number(name.slice(1)) % addressNames.length]!),
  );
}

/** Resolves once the current process has logged a write of this round (or after `timeoutMs`). */
async function firstWrite(sinceLines: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const lines = await operator.currentLines();
    if (lines.slice(sinceLines).some((l) => l.msg === "issued a password" || l.msg === "revoked credentials"))
      return true;
    await sleep(10);
  }
  return false;
}

beforeAll(async () => {
  cluster = await FaultCluster.start();
  workload = new Workload(cluster);
  audit = SecretAudit.start(cluster.client, cluster.namespace);
  operator = await OperatorProcess.start({
    restartDelayMs: restartLikeAPod,
    name: "operator",
    args: cluster.operatorArgs(undefined, ["--no-leader-elect"]),
  });
  await operator.waitForMessage("operator running");
  for (const name of addressNames) await workload.createAddress(name);
  await createDevices(60);
  await waitForInvariant(cluster, workload, audit);
});

afterAll(async () => {
  const exit = await operator?.stop();
  const logs = (await operator?.logText()) ?? "";
  await audit?.stop();
  await operator?.dispose();
  await cluster?.stop();
  expect(plaintextIn(logs, audit)).toEqual([]);
  expect(exit?.code).toBe(0);
});

describe("the operator SIGKILLed during rotations and deletions", () => {
  it(`recovers from ${rounds} kills at random points, each rotation acted on exactly once`, async () => {
    const results: { round: number; when: string; recoverMs: number; devices: number }[] = [];
    let kills = 0;
    for (let round = 0; round < rounds; round++) {
      const names = workload.deviceNames();
      const toDelete = sample(names, 4);
      const toRotate = sample(
        names.filter((n) => !toDelete.includes(n)),
        12,
      );
      const linesBefore = (await operator.currentLines()).length;
      const changes = Promise.all([
        pool(toRotate, 4, (n) => workload.rotateDevice(n)),
        pool(toDelete, 2, (n) => workload.deleteDevice(n)),
        createDevices(4),
      ]);
      // Alternate where the kill lands: just after the first write of the round, or anywhere.
      let when: string;
      if (round % 2 === 0) {
        const wrote = await firstWrite(linesBefore, 5000);
        await sleep(Math.random() * 50);
        when = wrote ? "after its first write" : "idle";
      } else {
        await sleep(Math.random() * 1500);
        when = "at a random delay";
      }
      await operator.kill("SIGKILL");
      kills++;
      await operator.restart();
      // Every third round, kill it again while it starts (caches syncing, first reconciles).
      if (round % 3 === 1) {
        await sleep(300 + Math.random() * 1200);
        await operator.kill("SIGKILL");
        kills++;
        when += ", then during restart";
        await operator.restart();
      }
      const restartedAt = performance.now();
      await changes;
      const recovery = await waitForInvariant(cluster, workload, audit);
      results.push({
        round,
        when,
        recoverMs: Math.round(recovery.heldAt - restartedAt),
        devices: recovery.report.devices,
      });
    }
    const times = results.map((r) => r.recoverMs).sort((a, b) => a - b);
    report(`operator SIGKILLed ${kills} times in ${rounds} rounds`, {
      kills,
      recoverMsMedian: times[Math.floor(times.length / 2)],
      recoverMsMax: times.at(-1),
      devices: results.at(-1)?.devices,
      rotations: [...workload.devices.values()].reduce((n, d) => n + d.rotations, 0),
      deleted: workload.deleted.size,
      auditGaps: audit.gaps,
      rounds: results,
    });
    expect(kills).toBeGreaterThanOrEqual(20);
  });
});

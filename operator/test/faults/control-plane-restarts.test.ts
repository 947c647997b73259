// Faults of the control plane itself: kube-apiserver SIGKILLed while 200 devices are created,
// rotated and deleted (once briefly, once for longer than the leader's renew deadline), and etcd
// SIGKILLed during rotations and deletions. After each, the invariant must hold again.
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const addressNames = Array.from({ length: 20 }, (_, i) => `user${String(i).padStart(2, "0")}`);

beforeAll(async () => {
  cluster = await FaultCluster.start();
  workload = new Workload(cluster);
  audit = SecretAudit.start(cluster.client, cluster.namespace);
  operator = await OperatorProcess.start({
    restartDelayMs: restartLikeAPod,
    name: "operator",
    args: cluster.operatorArgs(),
  });
  await operator.waitForMessage("became the leader");
  for (const name of addressNames) await workload.createAddress(name);
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

describe("control plane restarts", () => {
  it("kube-apiserver killed and restarted while 200 devices are created", async () => {
    const names = Array.from({ length: 200 }, (_, i) => `dev${String(i).padStart(3, "0")}`);
    const creating = pool(names, 8, (name) =>
      workload.createDevice(name, addressNames[Number(name.slice(3)) % 20]!),
    );
    await sleep(1000 + Math.random() * 2000);
    const killedAt = performance.now();
    await cluster.plane.restartApiServer("SIGKILL", 2000);
    const upAt = performance.now();
    await creating;
    const recovery = await waitForInvariant(cluster, workload, audit);
    report("kube-apiserver killed during 200 creates", {
      downMs: Math.round(upAt - killedAt),
      recoverMs: Math.round(recovery.heldAt - upAt),
      invariantMs: recovery.ms,
      ...recovery.report,
      operatorExits: operator.exits.length,
      auditGaps: audit.gaps,
    });
  });

  it("kube-apiserver down longer than the renew deadline while devices are rotated and deleted", async () => {
    const names = workload.deviceNames();
    const toDelete = sample(names, 50);
    const rest = names.filter((n) => !toDelete.includes(n));
    // Address rotations only where no device is rotated too, so each rotation is one new password.
    const rotatedAddresses = ["user00", "user01"];
    const toRotate = sample(
      rest.filter((n) => !rotatedAddresses.includes(workload.devices.get(n)!.address)),
      100,
    );
    const changes = Promise.all([
      pool(toRotate, 6, (n) => workload.rotateDevice(n)),
      pool(toDelete, 4, (n) => workload.deleteDevice(n)),
      pool(rotatedAddresses, 1, (n) => workload.rotateAddress(n)),
    ]);
    await sleep(500 + Math.random() * 1500);
    const exitsBefore = operator.exits.length;
    const killedAt = performance.now();
    await cluster.plane.restartApiServer("SIGKILL", 12_000);
    const upAt = performance.now();
    await changes;
    const recovery = await waitForInvariant(cluster, workload, audit);
    const exits = operator.exits.slice(exitsBefore);
    report("kube-apiserver down 12 s during 100 rotations, 2 address rotations, 50 deletions", {
      downMs: Math.round(upAt - killedAt),
      recoverMs: Math.round(recovery.heldAt - upAt),
      invariantMs: recovery.ms,
      ...recovery.report,
      operatorExits: exits.map((e) => e.code),
      auditGaps: audit.gaps,
    });
    // The leader could not renew for 10 s: it must have stopped (exit 1) rather than go on writing.
    expect(exits.some((e) => e.code === 1)).toBe(true);
  });

  it("etcd killed and restarted during rotations and deletions", async () => {
    const names = workload.deviceNames();
    const toDelete = sample(names, 20);
    const toRotate = sample(
      names.filter((n) => !toDelete.includes(n)),
      60,
    );
    const changes = Promise.all([
      pool(toRotate, 6, (n) => workload.rotateDevice(n)),
      pool(toDelete, 4, (n) => workload.deleteDevice(n)),
    ]);
    await sleep(300 + Math.random() * 1000);
    const killedAt = performance.now();
    await cluster.plane.restartEtcd("SIGKILL", 3000);
    const upAt = performance.now();
    await changes;
    const recovery = await waitForInvariant(cluster, workload, audit);
    report("etcd killed for 3 s during 60 rotations and 20 deletions", {
      downMs: Math.round(upAt - killedAt),
      recoverMs: Math.round(recovery.heldAt - upAt),
      invariantMs: recovery.ms,
      ...recovery.report,
      operatorExits: operator.exits.length,
      auditGaps: audit.gaps,
    });
  });
});

// Across operator restarts: exactly one new password per rotate value, and no writes at all when
// nothing changed (resync and restart are level-based and idempotent).
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminKubectl, eventually, withNamespace } from "../support.ts";
import { devicePassword, startOperator, type RunningOperator } from "../operator-support.ts";

const kubectl = adminKubectl();
const examples = join(import.meta.dirname, "..", "..", "..", "examples", "mail");
let ns: { name: string; dispose: () => Promise<void> };
let passdbNs: { name: string; dispose: () => Promise<void> };
let running: RunningOperator | undefined;

const start = async () =>
  (running = await startOperator({ namespaces: [ns.name], passdbNamespace: passdbNs.name }));

beforeAll(async () => {
  ns = await withNamespace(kubectl, "restart");
  passdbNs = await withNamespace(kubectl, "restart-passdb");
  await start();
  await kubectl.ok(["apply", "-n", ns.name, "-f", examples]);
  await kubectl.ok(["wait", "-n", ns.name, "--for=condition=Ready", "--timeout=60s", "maildevice", "--all"]);
});
afterAll(async () => {
  await running?.stop();
  await ns.dispose();
  await passdbNs.dispose();
});

async function rotationCount(name: string): Promise<number> {
  const device = await kubectl.json<{ status: { rotationCount: number } }>([
    "get",
    "maildevice",
    name,
    "-n",
    ns.name,
  ]);
  return device.status.rotationCount;
}

describe("restarts", () => {
  it("makes no write requests while nothing changes", async () => {
    await new Promise((r) => setTimeout(r, 500)); // let the last status echoes settle
    running!.writes.length = 0;
    await new Promise((r) => setTimeout(r, 3000));
    expect(running!.writes).toEqual([]);
  });

  it("makes no write requests when restarted with everything converged", async () => {
    await running!.stop();
    await start();
    await new Promise((r) => setTimeout(r, 3000));
    expect(running!.writes).toEqual([]);
  });

  it("acts on a rotate value set while it was down exactly once, also if restarted again", async () => {
    const before = await devicePassword(kubectl, ns.name, "alice-iphone-mail-credentials");
    const count = await rotationCount("alice-iphone");
    await running!.stop();
    await kubectl.ok([
      "annotate",
      "-n",
      ns.name,
      "maildevice",
      "alice-iphone",
      "mail.devicepass.io/rotate=while-down",
      "--overwrite",
    ]);
    await start();
    const after = await eventually(async () => {
      const p = await devicePassword(kubectl, ns.name, "alice-iphone-mail-credentials");
      expect(p).not.toBe(before);
      return p;
    });
    await kubectl.ok([
      "wait",
      "-n",
      ns.name,
      "--for=condition=Ready",
      "--timeout=30s",
      "maildevice/alice-iphone",
    ]);
    await running!.stop();
    await start();
    await new Promise((r) => setTimeout(r, 2000));
    expect(await devicePassword(kubectl, ns.name, "alice-iphone-mail-credentials")).toBe(after);
    expect(await rotationCount("alice-iphone")).toBe(count + 1);
  });
});

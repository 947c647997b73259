// Across operator restarts: exactly one new password per rotate value, and no writes at all when
// nothing changed (resync and restart are level-based and idempotent).
import { describe, expect, it } from "vitest";
import { adminKubectl, eventually } from "../support.ts";
import { devicePassword, useOperator } from "../operator-support.ts";

const kubectl = adminKubectl();
const env = useOperator("restart", { applyExamples: true });

async function rotationCount(name: string): Promise<number> {
  const device = await kubectl.json<{ status: { rotationCount: number } }>([
    "get",
    "maildevice",
    name,
    "-n",
    env.namespaces[0]!,
  ]);
  return device.status.rotationCount;
}

describe("restarts", () => {
  it("makes no write requests while nothing changes", async () => {
    await new Promise((r) => setTimeout(r, 500)); // let the last status echoes settle
    env.running.writes.length = 0;
    await new Promise((r) => setTimeout(r, 3000));
    expect(env.running.writes).toEqual([]);
  });

  it("makes no write requests when restarted with everything converged", async () => {
    await env.restart();
    await new Promise((r) => setTimeout(r, 3000));
    expect(env.running.writes).toEqual([]);
  });

  it("acts on a rotate value set while it was down exactly once, also if restarted again", async () => {
    const before = await devicePassword(kubectl, env.namespaces[0]!, "alice-iphone-mail-credentials");
    const count = await rotationCount("alice-iphone");
    await env.stop();
    await kubectl.ok([
      "annotate",
      "-n",
      env.namespaces[0]!,
      "maildevice",
      "alice-iphone",
      "mail.devicepass.io/rotate=while-down",
      "--overwrite",
    ]);
    await env.restart();
    const after = await eventually(async () => {
      const p = await devicePassword(kubectl, env.namespaces[0]!, "alice-iphone-mail-credentials");
      expect(p).not.toBe(before);
      return p;
    });
    await kubectl.ok([
      "wait",
      "-n",
      env.namespaces[0]!,
      "--for=condition=Ready",
      "--timeout=30s",
      "maildevice/alice-iphone",
    ]);
    await env.restart();
    await new Promise((r) => setTimeout(r, 2000));
    expect(await devicePassword(kubectl, env.namespaces[0]!, "alice-iphone-mail-credentials")).toBe(after);
    expect(await rotationCount("alice-iphone")).toBe(count + 1);
  });
});

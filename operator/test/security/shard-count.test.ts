// Issue 11, finding 8 (and finding 4 across it): the cluster administrator lowers passdb.shards,
// the operator restarts with fewer shards. The shards beyond the count must go and never be read
// again (one planted there by hand holds up no revocation), and the ownership records the lost
// shards held must not be lost with them: an older claim of another namespace, admitted after the
// owner's, must not take the owner's addresses at the restart.
import { describe, expect, it } from "vitest";
import { consistently, eventually } from "../support.ts";
import {
  condition,
  linesFor,
  mailAddress,
  mailDevice,
  ownerRecords,
  plaintextLeaks,
  readDatabase,
  useSecurityEnv,
  waitReady,
  yamlOf,
} from "./support.ts";

const prefix = "devicepass-passdb";
const env = useSecurityEnv("sec-shards", {
  tenants: 2,
  shards: 8,
  // At first only the owner's namespace is admitted; the squatter's comes later.
  domainSpec: (tenants) => ({ namespaces: [tenants[0]!.namespace] }),
  operatorEnv: { DEVICEPASS_MIN_ROTATION_INTERVAL: "0s" },
});
const owner = () => env.tenants[0]!;
const squatter = () => env.tenants[1]!;
const contested = Array.from({ length: 8 }, (_, i) => i);
const address = (i: number) => `shared-${i}@${env.domain}`;
const database = () => readDatabase(env.admin, env.passdbNamespace);
/** The shards holding the contested addresses' ownership records before the shard count was lowered. */
let recordShards: number[] = [];
const shardNames = async () =>
  (await database())
    .map((f) => f.shard)
    .filter((name, i, all) => all.indexOf(name) === i)
    .sort();

/** Every contested address issues for the owner only; the squatter's claims are refused. */
async function expectOwnerKeepsAll(): Promise<void> {
  const files = await database();
  for (const i of contested) {
    expect(
      await condition(env.admin, "maildevice", owner().namespace, `o-${i}-phone`),
      `o-${i}-phone`,
    ).toMatchObject({
      status: "True",
    });
    expect(await condition(env.admin, "mailaddress", squatter().namespace, `s-${i}`), `s-${i}`).toMatchObject(
      {
        status: "False",
        reason: "AddressConflict",
      },
    );
    expect(linesFor(files, address(i)).map((l) => l.fields[1])).toEqual([
      `${owner().namespace}/o-${i}-phone`,
    ]);
  }
}

describe("(4, 8) lowering the shard count", () => {
  it("starts with the owner's claims issuing and the older, later admitted claims refused", async () => {
    const squat = await squatter().apply(
      contested.flatMap((i) => [mailAddress(`s-${i}`, address(i)), mailDevice(`s-${i}-phone`, `s-${i}`)]),
    );
    expect(squat.code, squat.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1100)); // the squatter's claims are older by whole seconds
    const own = await owner().apply(
      contested.flatMap((i) => [mailAddress(`o-${i}`, address(i)), mailDevice(`o-${i}-phone`, `o-${i}`)]),
    );
    expect(own.code, own.stderr).toBe(0);
    await waitReady(
      env.admin,
      owner().namespace,
      contested.map((i) => `o-${i}-phone`),
    );
    await env.applyDomain({ namespaces: env.tenants.map((t) => t.namespace) }); // now both are admitted
    await eventually(async () =>
      expect(await condition(env.admin, "mailaddress", squatter().namespace, "s-0")).toMatchObject({
        reason: "AddressConflict",
      }),
    );
    await consistently(expectOwnerKeepsAll, 3_000, 500);
  });

  it("deletes the shards beyond the new count, and never reads one planted there again", async () => {
    // Where the contested addresses' ownership records sit before the restart (for the next test).
    recordShards = ownerRecords(await database())
      .filter((r) => contested.some((i) => r.fields[0] === address(i)))
      .map((r) => Number(r.shard.slice(prefix.length + 1)));

    await env.startOperator({ shards: 2 });
    await eventually(
      async () => expect(await shardNames()).toEqual([`${prefix}-00`, `${prefix}-01`]),
      60_000,
    );
    for (const i of contested) await waitReady(env.admin, owner().namespace, [`o-${i}-phone`]);

    // A stale shard put back by hand, still holding o-0-phone's entry.
    const line = linesFor(await database(), address(0))[0]!;
    await env.admin.ok(
      ["apply", "-f", "-"],
      yamlOf([
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: {
            name: `${prefix}-05`,
            namespace: env.passdbNamespace,
            labels: { "app.kubernetes.io/managed-by": "devicepass", "app.kubernetes.io/component": "passdb" },
          },
          stringData: { [line.key]: `# stale\n${line.line}\n` },
        },
      ]),
    );
    const deleted = await owner().kubectl.run([
      "delete",
      "maildevice",
      "o-0-phone",
      "-n",
      owner().namespace,
      "--timeout=60s",
    ]);
    expect(deleted.code, deleted.stderr).toBe(0);
    await eventually(
      async () => expect(await shardNames()).toEqual([`${prefix}-00`, `${prefix}-01`]),
      30_000,
    );
    expect(linesFor(await database(), address(0))).toEqual([]);
    // Put it back for the next test.
    const restored = await owner().apply([mailDevice("o-0-phone", "o-0")]);
    expect(restored.code, restored.stderr).toBe(0);
    await waitReady(env.admin, owner().namespace, ["o-0-phone"]);
  });

  it("keeps every address with its owner: no ownership record is lost with the deleted shards", async () => {
    expect(
      recordShards.some((s) => s >= 2),
      `some ownership record must have sat in a shard beyond 01 for this test to mean anything: ${recordShards.join()}`,
    ).toBe(true);
    await consistently(expectOwnerKeepsAll, 4_000, 500);
    // And across one more restart, now that the records sit in the remaining shards.
    await env.startOperator();
    await consistently(expectOwnerKeepsAll, 3_000, 500);
  });

  it("leaks no plaintext password into a log line, event, status, database version or other Secret", async () => {
    expect(await plaintextLeaks(env)).toEqual([]);
  });
});

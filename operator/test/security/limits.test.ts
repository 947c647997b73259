// Issue 11, findings 3 and 6: one tenant bloats the password database (many addresses, many
// devices, many empty addresses) in the shard it shares with an older tenant. The shard is small
// here (--passdb-shard-budget-bytes 4096, one shard) so that it is cheap to fill. The older
// tenant's rotations, new devices and revocations must keep reaching Dovecot; only the newest
// addresses are left out (DatabaseFull); each address holds at most maxDevicesPerAddress hashes,
// so a wrong password costs Dovecot at most that many argon2id verifications.
import { beforeAll, describe, expect, it } from "vitest";
import { consistently, eventually } from "../support.ts";
import {
  condition,
  credentialSecret,
  expectEveryVersionClean,
  linesFor,
  login,
  mailAddress,
  mailDevice,
  ownerRecords,
  plaintextLeaks,
  readDatabase,
  readSecret,
  rotateAnnotation,
  useSecurityEnv,
  waitReady,
} from "./support.ts";

const budget = 4096;
const maxDevices = 3;
const env = useSecurityEnv("sec-limits", {
  tenants: 2,
  shards: 1,
  dovecot: { authDebug: true },
  operatorEnv: {
    DEVICEPASS_PASSDB_SHARD_BUDGET_BYTES: String(budget),
    DEVICEPASS_MAX_DEVICES_PER_ADDRESS: String(maxDevices),
    DEVICEPASS_MIN_ROTATION_INTERVAL: "0s",
  },
});
const attacker = () => env.tenants[0]!;
const victim = () => env.tenants[1]!;
const victimAddress = () => `victim@${env.domain}`;
const mail = () => env.mail!;
const database = () => readDatabase(env.admin, env.passdbNamespace);
const secretPassword = async (ns: string, device: string) =>
  (await readSecret(env.admin, ns, credentialSecret(device))).password;

/** The attacker's addresses: a-0 … a-5, each with three devices; a-0 also with a fourth, over the limit. */
const attackerAddresses = Array.from({ length: 6 }, (_, i) => `a-${i}`);
const attackerDevices = (name: string) => [1, 2, 3].map((d) => `${name}-d${d}`);

async function rotateAndExpectWorking(device: string): Promise<string> {
  const before = await secretPassword(victim().namespace, device);
  await victim().kubectl.ok([
    "annotate", "maildevice", device, "-n", victim().namespace, `${rotateAnnotation}=${Date.now()}`, "--overwrite",
  ]); // prettier-ignore
  const after = await eventually(async () => {
    const p = await secretPassword(victim().namespace, device);
    expect(p).not.toBe(before);
    return p;
  });
  await eventually(async () => {
    expect(await login(mail(), "imap", victimAddress(), after), "the new password").toBe(true);
    expect(await login(mail(), "imap", victimAddress(), before), "the old password").toBe(false);
  }, 30_000);
  return after;
}

function shardBytes(files: { key: string; text: string }[]): number {
  return files.reduce((n, f) => n + f.key.length + Buffer.byteLength(f.text), 0);
}

beforeAll(async () => {
  const applied = await victim().apply([
    mailAddress("victim", victimAddress()),
    mailDevice("victim-phone", "victim"),
  ]);
  expect(applied.code, applied.stderr).toBe(0);
  await waitReady(env.admin, victim().namespace, ["victim-phone"]);
  const pass = await secretPassword(victim().namespace, "victim-phone");
  await eventually(async () => expect(await login(mail(), "imap", victimAddress(), pass)).toBe(true), 30_000);
});

describe("(3) a tenant filling its shard", () => {
  it("pushes out only the newest addresses (DatabaseFull), never the older tenant's", async () => {
    // a-0 first, so that it is the attacker's oldest; the others a second later, all at once.
    const first = await attacker().apply([
      mailAddress("a-0", `a-0@${env.domain}`),
      ...attackerDevices("a-0").map((d) => mailDevice(d, "a-0")),
    ]);
    expect(first.code, first.stderr).toBe(0);
    await waitReady(env.admin, attacker().namespace, attackerDevices("a-0"));
    await new Promise((r) => setTimeout(r, 1100)); // ownership records count whole seconds
    const rest = await attacker().apply(
      attackerAddresses
        .slice(1)
        .flatMap((a) => [
          mailAddress(a, `${a}@${env.domain}`),
          ...attackerDevices(a).map((d) => mailDevice(d, a)),
        ]),
    );
    expect(rest.code, rest.stderr).toBe(0);

    const leftOut = await eventually(async () => {
      const full: string[] = [];
      for (const a of attackerAddresses) {
        const reasons = await Promise.all(
          attackerDevices(a).map(
            async (d) => (await condition(env.admin, "maildevice", attacker().namespace, d))?.reason,
          ),
        );
        expect(
          reasons.every((r) => r === "CredentialsReady" || r === "DatabaseFull"),
          `${a}: ${reasons.join()}`,
        ).toBe(true);
        if (reasons.includes("DatabaseFull")) full.push(`${a}@${env.domain}`);
      }
      expect(full.length).toBeGreaterThan(0);
      return full;
    }, 60_000);
    expect(await condition(env.admin, "maildevice", victim().namespace, "victim-phone")).toMatchObject({
      status: "True",
    });

    const files = await database();
    expect(shardBytes(files)).toBeLessThanOrEqual(budget);
    expect(linesFor(files, victimAddress())).toHaveLength(1);
    // The left-out addresses are the newest owners: (since, address) after every kept one.
    const owners = ownerRecords(files).map((r) => ({ address: r.fields[0]!, since: r.fields[2]! }));
    const order = (o: { address: string; since: string }) => `${o.since} ${o.address}`;
    const keptOwners = owners.filter((o) => linesFor(files, o.address).length > 0);
    for (const address of leftOut) {
      expect(linesFor(files, address), address).toEqual([]);
      const record = owners.find((o) => o.address === address);
      if (record)
        for (const kept of keptOwners)
          expect(order(record) > order(kept), `${address} vs ${kept.address}`).toBe(true);
    }
    expect(leftOut).not.toContain(`a-0@${env.domain}`);
  });

  it("never stalls the older tenant's rotation, new device or revocation", async () => {
    await rotateAndExpectWorking("victim-phone");
    const added = await victim().apply([mailDevice("victim-laptop", "victim")]);
    expect(added.code, added.stderr).toBe(0);
    await waitReady(env.admin, victim().namespace, ["victim-laptop"]);
    const laptop = await secretPassword(victim().namespace, "victim-laptop");
    await eventually(
      async () => expect(await login(mail(), "imap", victimAddress(), laptop)).toBe(true),
      30_000,
    );
    const deleted = await victim().kubectl.run([
      "delete",
      "maildevice",
      "victim-laptop",
      "-n",
      victim().namespace,
      "--timeout=60s",
    ]);
    expect(deleted.code, deleted.stderr).toBe(0);
    await eventually(
      async () => expect(await login(mail(), "imap", victimAddress(), laptop)).toBe(false),
      30_000,
    );
    expect(linesFor(await database(), victimAddress())).toHaveLength(1);
  });
});

describe("(3, 6) the device limit", () => {
  it("refuses devices beyond maxDevicesPerAddress (DeviceLimitExceeded) and reports the limit", async () => {
    const applied = await attacker().apply([mailDevice("a-0-d4", "a-0")]);
    expect(applied.code, applied.stderr).toBe(0);
    await eventually(async () => {
      const ready = await condition(env.admin, "maildevice", attacker().namespace, "a-0-d4");
      expect(ready).toMatchObject({ status: "False", reason: "DeviceLimitExceeded" });
      expect(ready?.message).toContain(`${maxDevices} older devices`);
    });
    await eventually(async () => {
      const address = await env.admin.json<{ status?: { maxDevices?: number; devices?: number } }>([
        "get", "mailaddress", "a-0", "-n", attacker().namespace,
      ]); // prettier-ignore
      expect(address.status).toMatchObject({ maxDevices, devices: maxDevices + 1 });
    });
    // The older devices keep their passwords.
    for (const d of attackerDevices("a-0"))
      expect(await condition(env.admin, "maildevice", attacker().namespace, d)).toMatchObject({
        status: "True",
      });
    await consistently(
      async () => expect(linesFor(await database(), `a-0@${env.domain}`)).toHaveLength(maxDevices),
      2_000,
    );
  });

  it("so a wrong password costs Dovecot at most that many argon2id verifications", async () => {
    const address = `a-0@${env.domain}`;
    expect(await login(mail(), "imap", address, "not-any-of-the-passwords")).toBe(false);
    const tried = await eventually(async () => {
      const lines = (await mail().dovecotLog()).split("\n").filter((l) => l.includes(address));
      const counts = lines.flatMap((l) => {
        const m = /no match among (\d+) of (\d+) devices/.exec(l);
        return m ? [[Number(m[1]), Number(m[2])]] : [];
      });
      expect(counts.length).toBeGreaterThan(0);
      return counts.at(-1)!;
    });
    expect(tried).toEqual([maxDevices, maxDevices]);
  });
});

describe("(3) a tenant filling its shard with empty addresses (ownership records only)", () => {
  it("still cannot stall the older tenant's rotation", async () => {
    const fillers = Array.from({ length: 80 }, (_, i) =>
      mailAddress(`filler-${i}`, `filler-${i}@${env.domain}`),
    );
    const applied = await attacker().apply(fillers);
    expect(applied.code, applied.stderr).toBe(0);
    await eventually(async () => {
      const status = await env.admin.json<{ items: { status?: { conditions?: { reason: string }[] } }[] }>([
        "get", "mailaddresses", "-n", attacker().namespace,
      ]); // prettier-ignore
      expect(status.items.filter((a) => a.status?.conditions?.length).length).toBe(
        fillers.length + attackerAddresses.length,
      );
    }, 60_000);
    await rotateAndExpectWorking("victim-phone");
    expect(await condition(env.admin, "maildevice", victim().namespace, "victim-phone")).toMatchObject({
      status: "True",
      reason: "CredentialsReady",
    });
    const files = await database();
    expect(shardBytes(files)).toBeLessThanOrEqual(budget);
    expect(linesFor(files, victimAddress())).toHaveLength(1);
  });
});

describe("the database and plaintext passwords", () => {
  it("never held anything but well-formed argon2id entries", () => {
    expectEveryVersionClean(env.database);
  });

  it("appear in no log line, event, status, database version or other Secret", async () => {
    expect(await plaintextLeaks(env)).toEqual([]);
  });
});

// Issue 11, findings 4 and 9: address squatting and takeover, and what one tenant learns about
// another. A squatter claims an address before its namespace is admitted; the owner re-creates
// its MailAddress the way a GitOps tool replaces it; the cluster administrator reserves local
// parts for a namespace. Afterwards no status or event in a tenant's namespace may name another
// tenant's namespace or objects, and only the owner hears about its sessions being cut.
import { beforeAll, describe, expect, it } from "vitest";
import { consistently, eventually } from "../support.ts";
import {
  condition,
  credentialSecret,
  linesFor,
  login,
  mailAddress,
  mailDevice,
  plaintextLeaks,
  readDatabase,
  readSecret,
  rotateAnnotation,
  useSecurityEnv,
  waitReady,
} from "./support.ts";

const env = useSecurityEnv("sec-own", {
  tenants: 3,
  shards: 2,
  dovecot: {},
  // The squatter's namespace (the second) is admitted only later.
  domainSpec: (tenants) => ({ namespaces: [tenants[0]!.namespace, tenants[2]!.namespace] }),
  operatorEnv: { DEVICEPASS_MIN_ROTATION_INTERVAL: "0s" },
});
const owner = () => env.tenants[0]!;
const squatter = () => env.tenants[1]!;
const reserved = () => env.tenants[2]!;
const everyone = () => env.tenants.map((t) => t.namespace);
const boss = () => `boss@${env.domain}`;
const database = () => readDatabase(env.admin, env.passdbNamespace);

/** The owner's a-boss issues, the squatter's b-boss is refused, and only the owner's device is in the database. */
async function expectOwnerHoldsBoss(): Promise<void> {
  expect(await condition(env.admin, "maildevice", owner().namespace, "a-boss-phone")).toMatchObject({
    status: "True",
  });
  const squat = await condition(env.admin, "mailaddress", squatter().namespace, "b-boss");
  expect(squat).toMatchObject({ status: "False", reason: "AddressConflict" });
  expect(linesFor(await database(), boss()).map((l) => l.fields[1])).toEqual([
    `${owner().namespace}/a-boss-phone`,
  ]);
}

beforeAll(async () => {
  // The squatter claims boss@ first, while its namespace is not admitted.
  const squat = await squatter().apply([mailAddress("b-boss", boss()), mailDevice("b-boss-phone", "b-boss")]);
  expect(squat.code, squat.stderr).toBe(0);
  await eventually(async () =>
    expect(await condition(env.admin, "mailaddress", squatter().namespace, "b-boss")).toMatchObject({
      reason: "NamespaceNotAllowed",
    }),
  );
  await new Promise((r) => setTimeout(r, 1100)); // the squatter's claim is older by whole seconds
  const own = await owner().apply([mailAddress("a-boss", boss()), mailDevice("a-boss-phone", "a-boss")]);
  expect(own.code, own.stderr).toBe(0);
  await waitReady(env.admin, owner().namespace, ["a-boss-phone"]);
});

describe("(4) address squatting and takeover", () => {
  it("a claim made before its namespace was admitted does not beat the owner later", async () => {
    await env.applyDomain({ namespaces: everyone() });
    await eventually(async () =>
      expect(await condition(env.admin, "mailaddress", squatter().namespace, "b-boss")).toMatchObject({
        reason: "AddressConflict",
      }),
    );
    await consistently(expectOwnerHoldsBoss, 3_000, 500);
  });

  it("the owner's GitOps re-creation of its MailAddress keeps the address", async () => {
    const deleted = await owner().kubectl.run([
      "delete", "-n", owner().namespace, "maildevice/a-boss-phone", "mailaddress/a-boss", "--timeout=60s",
    ]); // prettier-ignore
    expect(deleted.code, deleted.stderr).toBe(0);
    // Meanwhile the waiting claim gets nothing.
    await consistently(
      async () => {
        expect(await condition(env.admin, "mailaddress", squatter().namespace, "b-boss")).toMatchObject({
          reason: "AddressConflict",
        });
        expect(linesFor(await database(), boss())).toEqual([]);
      },
      2_000,
      500,
    );
    const recreated = await owner().apply([
      mailAddress("a-boss", boss()),
      mailDevice("a-boss-phone", "a-boss"),
    ]);
    expect(recreated.code, recreated.stderr).toBe(0);
    await waitReady(env.admin, owner().namespace, ["a-boss-phone"]);
    await consistently(expectOwnerHoldsBoss, 3_000, 500);
  });

  it("a reservation in the MailDomain gives local parts to its namespace, whoever claimed first", async () => {
    // The owner claims ceo@ and sales-us@ before the reservation exists, and before the reserved namespace does.
    const early = await owner().apply([
      mailAddress("a-ceo", `ceo@${env.domain}`),
      mailDevice("a-ceo-phone", "a-ceo"),
      mailAddress("a-sales", `sales-us@${env.domain}`),
      mailDevice("a-sales-phone", "a-sales"),
    ]);
    expect(early.code, early.stderr).toBe(0);
    await waitReady(env.admin, owner().namespace, ["a-ceo-phone", "a-sales-phone"]);
    await env.applyDomain({
      namespaces: everyone(),
      reservations: [{ namespace: reserved().namespace, localParts: ["ceo", "sales-*"] }],
    });
    const claimed = await reserved().apply([
      mailAddress("c-ceo", `ceo@${env.domain}`),
      mailDevice("c-ceo-phone", "c-ceo"),
      mailAddress("c-sales", `sales-eu@${env.domain}`),
      mailDevice("c-sales-phone", "c-sales"),
    ]);
    expect(claimed.code, claimed.stderr).toBe(0);
    await waitReady(env.admin, reserved().namespace, ["c-ceo-phone", "c-sales-phone"]);
    for (const name of ["a-ceo", "a-sales"])
      await eventually(async () => {
        const ready = await condition(env.admin, "mailaddress", owner().namespace, name);
        expect(ready).toMatchObject({ status: "False", reason: "AddressConflict" });
        expect(ready?.message).toContain("reserved for another namespace");
      });
    const files = await database();
    expect(linesFor(files, `ceo@${env.domain}`).map((l) => l.fields[1])).toEqual([
      `${reserved().namespace}/c-ceo-phone`,
    ]);
    expect(linesFor(files, `sales-us@${env.domain}`)).toEqual([]);
    const ceo = (await readSecret(env.admin, reserved().namespace, credentialSecret("c-ceo-phone"))).password;
    await eventually(
      async () => expect(await login(env.mail!, "imap", `ceo@${env.domain}`, ceo)).toBe(true),
      30_000,
    );
  });
});

describe("(9) cross-tenant leaks", () => {
  it("tells only the owning claim about its sessions being cut", async () => {
    // Both claims as they were declared (the test stands on its own), then a rotation of the
    // issuing claim's device: its old password is revoked, and the sessions of boss@ are cut.
    const claims = [
      { tenant: owner(), address: "a-boss" },
      { tenant: squatter(), address: "b-boss" },
    ];
    for (const { tenant, address } of claims) {
      const applied = await tenant.apply([
        mailAddress(address, boss()),
        mailDevice(`${address}-phone`, address),
      ]);
      expect(applied.code, applied.stderr).toBe(0);
    }
    const standing = await Promise.all(
      claims.map(
        async (c) => (await condition(env.admin, "mailaddress", c.tenant.namespace, c.address))?.status,
      ),
    );
    const issuing = claims[standing.indexOf("True")];
    const refused = claims[standing.indexOf("False")];
    expect(issuing && refused, `one claim issues, the other is refused: ${standing.join()}`).toBeTruthy();
    await waitReady(env.admin, issuing!.tenant.namespace, [`${issuing!.address}-phone`]);
    await issuing!.tenant.kubectl.ok([
      "annotate", "maildevice", `${issuing!.address}-phone`, "-n", issuing!.tenant.namespace,
      `${rotateAnnotation}=${Date.now()}`, "--overwrite",
    ]); // prettier-ignore
    await eventually(async () =>
      expect(
        await condition(env.admin, "mailaddress", issuing!.tenant.namespace, issuing!.address, "SessionsCut"),
      ).toBeDefined(),
    );
    await consistently(
      async () => {
        expect(
          await condition(
            env.admin,
            "mailaddress",
            refused!.tenant.namespace,
            refused!.address,
            "SessionsCut",
          ),
        ).toBeUndefined();
      },
      2_000,
      500,
    );
  });

  it("names no other tenant's namespace or objects in any status or event of a tenant's namespace", async () => {
    const objectsOf = async (ns: string) =>
      (
        await env.admin.json<{ items: { metadata: { name: string } }[] }>([
          "get",
          "mailaddresses,maildevices,secrets",
          "-n",
          ns,
        ])
      ).items.map((o) => o.metadata.name);
    const names = new Map<string, string[]>();
    for (const ns of everyone()) names.set(ns, await objectsOf(ns));
    const leaks: string[] = [];
    for (const ns of everyone()) {
      const statuses = await env.admin.json<{ items: { kind: string; metadata: { name: string }; status?: unknown }[] }>([
        "get", "mailaddresses,maildevices", "-n", ns,
      ]); // prettier-ignore
      const events = await env.admin.json<{ items: { reason: string; message: string }[] }>([
        "get",
        "events",
        "-n",
        ns,
      ]);
      const texts = [
        ...statuses.items.map((o) => ({
          where: `${o.kind} ${o.metadata.name}`,
          text: JSON.stringify(o.status ?? {}),
        })),
        ...events.items.map((e) => ({ where: `event ${e.reason}`, text: e.message })),
      ];
      for (const other of everyone().filter((o) => o !== ns))
        for (const { where, text } of texts) {
          if (text.includes(other)) leaks.push(`${ns}: ${where} names namespace ${other}: ${text}`);
          for (const name of names.get(other)!)
            if (!names.get(ns)!.includes(name) && new RegExp(`\\b${name}\\b`).test(text))
              leaks.push(`${ns}: ${where} names ${other}'s ${name}: ${text}`);
        }
    }
    expect(leaks).toEqual([]);
  });

  it("leaks no plaintext password into a log line, event, status, database version or other Secret", async () => {
    expect(await plaintextLeaks(env)).toEqual([]);
  });
});

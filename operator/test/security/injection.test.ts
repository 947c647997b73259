// Issue 11, findings 1 and 2: a tenant edits its own device Secret. (1) It injects database lines
// through the hash annotation: a {PLAIN} password of its own choosing, a line for another tenant's
// device, a `*` address for doveadm to kick. (2) It forges a consistent record (password, digest
// and an argon2id hash of its own password), with the operator's seal left in place or removed.
// Neither may change what Dovecot accepts, for any address.
import { createHash } from "node:crypto";
import { hash } from "@node-rs/argon2";
import { beforeAll, describe, expect, it } from "vitest";
import { imapLogin, imapNoop, type LineConnection } from "../../harness/mail-clients.ts";
import { consistently, eventually } from "../support.ts";
import {
  credentialSecret,
  databaseProblems,
  digestAnnotation,
  eventsIn,
  expectEveryVersionClean,
  hashAnnotation,
  login,
  mailAddress,
  mailDevice,
  plaintextLeaks,
  readDatabase,
  readSecret,
  sealAnnotation,
  useSecurityEnv,
  waitReady,
  type Protocol,
} from "./support.ts";

const env = useSecurityEnv("sec-inject", {
  tenants: 2,
  shards: 2,
  dovecot: {},
  operatorEnv: { DEVICEPASS_MIN_ROTATION_INTERVAL: "0s" },
});
const attacker = () => env.tenants[0]!;
const victim = () => env.tenants[1]!;
const attackerAddress = () => `mallory@${env.domain}`;
const victimAddress = () => `victim@${env.domain}`;
const attackerSecret = credentialSecret("mallory-phone");
const protocols: Protocol[] = ["imap", "pop3", "smtp"];
let victimSession: LineConnection | undefined;

const mail = () => env.mail!;
const password = async (ns: string, secret: string) => (await readSecret(env.admin, ns, secret)).password;
const tamperedEvents = async () =>
  (await eventsIn(env.admin, attacker().namespace)).filter(
    (e) => e.reason === "CredentialTampered" && e.involvedObject.name === "mallory-phone",
  );

/** Until its password is the one Dovecot takes, a device's earlier password may still work: wait. */
async function expectWorks(address: string, pass: string): Promise<void> {
  await eventually(async () => expect(await login(mail(), "imap", address, pass)).toBe(true), 30_000);
}

beforeAll(async () => {
  const applied = [
    await victim().apply([mailAddress("victim", victimAddress()), mailDevice("victim-phone", "victim")]),
    await attacker().apply([
      mailAddress("mallory", attackerAddress()),
      mailDevice("mallory-phone", "mallory"),
    ]),
  ];
  for (const result of applied) expect(result.code, result.stderr).toBe(0);
  await waitReady(env.admin, victim().namespace, ["victim-phone"]);
  await waitReady(env.admin, attacker().namespace, ["mallory-phone"]);
  const victimPassword = await password(victim().namespace, credentialSecret("victim-phone"));
  await expectWorks(victimAddress(), victimPassword);
  await expectWorks(attackerAddress(), await password(attacker().namespace, attackerSecret));
  // The victim reads mail meanwhile: a kick of `*` would cut this session too.
  const session = await imapLogin(
    { host: mail().host, port: mail().ports.imap },
    victimAddress(),
    victimPassword,
    {
      keepOpen: true,
    },
  );
  expect(session.response).toMatch(/^a1 OK/);
  victimSession = session.connection;
});

describe("(1) hash injection through the device's own Secret", () => {
  const chosen = "InjectedPlaintext1234567";
  let original: string;

  it("never reaches the database; Dovecot refuses the {PLAIN} password for every address", async () => {
    env.passwords.chosen.set(chosen, `${attacker().namespace}/${attackerSecret}`);
    const before = await readSecret(env.admin, attacker().namespace, attackerSecret);
    original = before.annotations[hashAnnotation]!;
    const injected = [
      original,
      `${attackerAddress()}\t${attacker().namespace}/ghost\timap,pop3,smtp\t{PLAIN}${chosen}`,
      `${victimAddress()}\t${victim().namespace}/victim-phone\timap,pop3,smtp\t{PLAIN}${chosen}`,
      `*\t${attacker().namespace}/wild\timap,pop3,smtp\t{PLAIN}${chosen}`,
    ].join("\n");
    await attacker().kubectl.ok([
      "patch", "secret", attackerSecret, "-n", attacker().namespace, "--type=merge",
      "-p", JSON.stringify({ metadata: { annotations: { [hashAnnotation]: injected } } }),
    ]); // prettier-ignore

    // Whatever the operator makes of it, for a while: the chosen password works nowhere.
    await consistently(async () => {
      for (const protocol of protocols) {
        expect(await login(mail(), protocol, attackerAddress(), chosen), `${protocol} as the attacker`).toBe(
          false,
        );
        expect(await login(mail(), protocol, victimAddress(), chosen), `${protocol} as the victim`).toBe(
          false,
        );
      }
    }, 4_000);
    expectEveryVersionClean(env.database);
    expect(databaseProblems(await readDatabase(env.admin, env.passdbNamespace))).toEqual([]);
  });

  it("re-issues the device's password with a Warning (CredentialTampered)", async () => {
    const fresh = await eventually(async () => {
      const secret = await readSecret(env.admin, attacker().namespace, attackerSecret);
      expect(secret.annotations[hashAnnotation]).not.toContain("\n");
      expect(secret.annotations[hashAnnotation]).not.toBe(original);
      return secret.password;
    });
    await eventually(async () => {
      const events = await tamperedEvents();
      expect(events.length).toBeGreaterThan(0);
      expect(events[0]!.type).toBe("Warning");
    });
    await expectWorks(attackerAddress(), fresh);
    expect(await login(mail(), "imap", attackerAddress(), chosen)).toBe(false);
  });

  it("cannot hold up the other tenant's revocation, and no kick is ever a wildcard", async () => {
    // The attacker's second step: take the injection out again (a removed `*` entry would be kicked).
    await attacker().kubectl.ok([
      "patch", "secret", attackerSecret, "-n", attacker().namespace, "--type=merge",
      "-p", JSON.stringify({ metadata: { annotations: { [hashAnnotation]: original } } }),
    ]); // prettier-ignore
    await consistently(async () => expect(await imapNoop(victimSession!)).toMatch(/^n1 OK/), 3_000, 500);

    const victimPassword = await password(victim().namespace, credentialSecret("victim-phone"));
    const deleted = await victim().kubectl.run([
      "delete", "maildevice", "victim-phone", "-n", victim().namespace, "--timeout=60s",
    ]); // prettier-ignore
    expect(deleted.code, deleted.stderr).toBe(0);
    await eventually(
      async () => expect(await login(mail(), "imap", victimAddress(), victimPassword)).toBe(false),
      30_000,
    );
    const database = await readDatabase(env.admin, env.passdbNamespace);
    expect(database.filter((f) => f.text.includes(`${victim().namespace}/victim-phone`))).toEqual([]);
    // The revocation was kicked, and only ever well-formed addresses from the operator's own database.
    await eventually(() => Promise.resolve(expect(env.doveadm!.masks).toContain(victimAddress())));
    for (const mask of env.doveadm!.masks) expect(mask).toMatch(/^[a-z0-9._-]+@[a-z0-9.-]+$/);
    victimSession?.close();
  });
});

describe("(2) a consistent forgery of the tenant's own record", () => {
  /** The attacker's own password, with its digest and an argon2id hash of the operator's parameters. */
  async function forge(chosen: string, seal: "kept" | "removed"): Promise<void> {
    env.passwords.chosen.set(chosen, `${attacker().namespace}/${attackerSecret}`);
    const forgedHash = `{ARGON2ID}${await hash(chosen, { algorithm: 2, memoryCost: 1024, timeCost: 1, parallelism: 1 })}`;
    const annotations: Record<string, string | null> = {
      [hashAnnotation]: forgedHash,
      [digestAnnotation]: createHash("sha256").update(chosen, "utf8").digest("hex"),
    };
    if (seal === "removed") annotations[sealAnnotation] = null;
    await attacker().kubectl.ok([
      "patch", "secret", attackerSecret, "-n", attacker().namespace, "--type=merge",
      "-p", JSON.stringify({ metadata: { annotations }, data: { password: Buffer.from(chosen).toString("base64") } }),
    ]); // prettier-ignore
  }

  for (const seal of ["kept", "removed"] as const) {
    it(`never lets the tenant's chosen password work (seal ${seal}); a new one is issued`, async () => {
      const chosen = seal === "kept" ? "ForgedWithSealKept123456" : "ForgedSealRemoved1234567";
      const tamperedBefore = (await tamperedEvents()).length;
      await forge(chosen, seal);
      await consistently(async () => {
        for (const protocol of protocols)
          expect(await login(mail(), protocol, attackerAddress(), chosen), protocol).toBe(false);
      }, 4_000);
      const fresh = await eventually(async () => {
        const p = await password(attacker().namespace, attackerSecret);
        expect(p).not.toBe(chosen);
        return p;
      });
      await expectWorks(attackerAddress(), fresh);
      expect(await login(mail(), "imap", attackerAddress(), chosen)).toBe(false);
      await eventually(async () => expect((await tamperedEvents()).length).toBeGreaterThan(tamperedBefore));
      expectEveryVersionClean(env.database);
    });
  }
});

describe("plaintext passwords", () => {
  it("appear in no log line, event, status, database version or other Secret", async () => {
    expect(await plaintextLeaks(env)).toEqual([]);
  });
});

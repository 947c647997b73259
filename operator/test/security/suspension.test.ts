// Issue 11, finding 10: policy states that may be undone must not destroy credentials. A MailDomain
// edited by mistake, or a namespace relabelled so that its MailDomain no longer admits it: the
// mail server stops accepting the password at once, but the Secret stays, and re-admission within
// the suspension grace (short here: --suspension-grace 25s) publishes the same password again.
// After the grace, the Secret is revoked.
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { consistently, eventually } from "../support.ts";
import {
  condition,
  credentialSecret,
  eventsIn,
  login,
  mailAddress,
  mailDevice,
  plaintextLeaks,
  readSecret,
  useSecurityEnv,
  waitReady,
} from "./support.ts";

const graceSeconds = 25;
const admitLabel = `sec.devicepass.test/admit-${randomBytes(3).toString("hex")}`;
const env = useSecurityEnv("sec-susp", {
  tenants: 2,
  shards: 2,
  dovecot: {},
  // The first tenant is admitted by name, the second by a label of its namespace.
  domainSpec: (tenants) => ({
    namespaces: [tenants[0]!.namespace],
    namespaceSelector: { matchLabels: { [admitLabel]: "admitted" } },
  }),
  operatorEnv: { DEVICEPASS_SUSPENSION_GRACE: `${graceSeconds}s`, DEVICEPASS_MIN_ROTATION_INTERVAL: "0s" },
});
const byName = () => env.tenants[0]!;
const byLabel = () => env.tenants[1]!;
const alice = () => `alice@${env.domain}`;
const bob = () => `bob@${env.domain}`;
const mail = () => env.mail!;
const passwordOf = async (ns: string, device: string) =>
  (await readSecret(env.admin, ns, credentialSecret(device))).password;
const accepted = (address: string, password: string, want: boolean) =>
  eventually(async () => expect(await login(mail(), "imap", address, password)).toBe(want), 30_000);
const eventReasons = async (ns: string, device: string) =>
  (await eventsIn(env.admin, ns)).filter((e) => e.involvedObject.name === device).map((e) => e.reason);

beforeAll(async () => {
  await env.admin.ok(["label", "namespace", byLabel().namespace, `${admitLabel}=admitted`]);
  for (const [tenant, name, address] of [
    [byName(), "alice", alice()],
    [byLabel(), "bob", bob()],
  ] as const) {
    const applied = await tenant.apply([mailAddress(name, address), mailDevice(`${name}-phone`, name)]);
    expect(applied.code, applied.stderr).toBe(0);
    await waitReady(env.admin, tenant.namespace, [`${name}-phone`]);
  }
  await accepted(alice(), await passwordOf(byName().namespace, "alice-phone"), true);
  await accepted(bob(), await passwordOf(byLabel().namespace, "bob-phone"), true);
});

describe("(10) transient policy states", () => {
  it("a MailDomain edited by mistake: the password stops working at once, the Secret stays, re-admission restores it", async () => {
    const password = await passwordOf(byName().namespace, "alice-phone");
    await env.applyDomain({ namespaces: [] }); // the mistake: alice's namespace is dropped
    await accepted(alice(), password, false);
    await eventually(async () =>
      expect(await condition(env.admin, "maildevice", byName().namespace, "alice-phone")).toMatchObject({
        reason: "NamespaceNotAllowed",
      }),
    );
    await consistently(
      async () => expect(await passwordOf(byName().namespace, "alice-phone")).toBe(password),
      2_000,
      500,
    );
    expect(await login(mail(), "imap", bob(), await passwordOf(byLabel().namespace, "bob-phone"))).toBe(true);
    await eventually(async () =>
      expect(await eventReasons(byName().namespace, "alice-phone")).toContain("Suspended"),
    );

    await env.applyDomain(); // undone
    await accepted(alice(), password, true);
    expect(await passwordOf(byName().namespace, "alice-phone")).toBe(password);
    await eventually(async () =>
      expect(await eventReasons(byName().namespace, "alice-phone")).toContain("Resumed"),
    );
    expect(await eventReasons(byName().namespace, "alice-phone")).not.toContain("Revoked");
  });

  it("a namespace relabelled: the same, and the same password comes back", async () => {
    const password = await passwordOf(byLabel().namespace, "bob-phone");
    await env.admin.ok(["label", "namespace", byLabel().namespace, `${admitLabel}-`]);
    await accepted(bob(), password, false);
    await consistently(
      async () => expect(await passwordOf(byLabel().namespace, "bob-phone")).toBe(password),
      2_000,
      500,
    );
    await env.admin.ok(["label", "namespace", byLabel().namespace, `${admitLabel}=admitted`]);
    await accepted(bob(), password, true);
    expect(await passwordOf(byLabel().namespace, "bob-phone")).toBe(password);
    await waitReady(env.admin, byLabel().namespace, ["bob-phone"]);
  });

  it("after the suspension grace, the Secret is revoked; re-admission then issues a new password", async () => {
    const password = await passwordOf(byLabel().namespace, "bob-phone");
    const suspended = Date.now();
    await env.admin.ok(["label", "namespace", byLabel().namespace, `${admitLabel}-`]);
    await accepted(bob(), password, false);
    // The grace counts from this suspension, not from the one before: the Secret stays until it ends.
    const untilGrace = suspended + (graceSeconds - 3) * 1000 - Date.now();
    await consistently(
      async () => expect(await passwordOf(byLabel().namespace, "bob-phone")).toBe(password),
      untilGrace,
      1_000,
    );
    await eventually(
      async () => {
        const gone = await env.admin.run([
          "get",
          "secret",
          credentialSecret("bob-phone"),
          "-n",
          byLabel().namespace,
        ]);
        expect(gone.code, "the Secret outlived the grace").not.toBe(0);
      },
      (graceSeconds + 60) * 1000,
    );
    expect(await eventReasons(byLabel().namespace, "bob-phone")).toContain("Revoked");
    expect(await login(mail(), "imap", bob(), password)).toBe(false);

    await env.admin.ok(["label", "namespace", byLabel().namespace, `${admitLabel}=admitted`]);
    await waitReady(env.admin, byLabel().namespace, ["bob-phone"]);
    const fresh = await passwordOf(byLabel().namespace, "bob-phone");
    expect(fresh).not.toBe(password);
    await accepted(bob(), fresh, true);
    expect(await login(mail(), "imap", bob(), password)).toBe(false);
  });

  it("leaks no plaintext password into a log line, event, status, database version or other Secret", async () => {
    expect(await plaintextLeaks(env)).toEqual([]);
  });
});

// End to end, as a user and a mail client see it: the operator runs as its own process, kubectl
// applies examples/mail/, and Debian's Dovecot and Postfix, configured with examples/dovecot/,
// read the password database from a mirrored Secret volume; real IMAP, POP3 and SMTP logins decide.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { MailServer } from "../../harness/dovecot.ts";
import { imapLogin, imapNoop, pop3Login, smtpAuth, type Endpoint } from "../../harness/mail-clients.ts";
import { OperatorProcess } from "../../harness/operator-process.ts";
import { SecretVolume } from "../../harness/secret-volume.ts";
import { devicePassword } from "../operator-support.ts";
import { adminKubectl, eventually, withNamespace } from "../support.ts";

const kubectl = adminKubectl();
const examples = join(import.meta.dirname, "..", "..", "..", "examples", "mail");
const domainExamples = join(import.meta.dirname, "..", "..", "..", "examples", "domain");
const address = "alice@example.com";
const secretNames = {
  "alice-iphone": "alice-iphone-mail-credentials",
  "alice-laptop-bob": "alice-laptop-bob-mail-credentials",
  "alice-printer": "office-scanner-mail",
} as const;
type Device = keyof typeof secretNames;

/** Dovecot's answer to a refused login; an internal failure ([UNAVAILABLE]) would not count. */
const imapRefused = /^a1 NO \[AUTHENTICATIONFAILED\]/;
const pop3Refused = /^-ERR \[AUTH\]/;
const smtpRefused = /^535 /;

let ns: { name: string; dispose: () => Promise<void> };
let passdbNs: { name: string; dispose: () => Promise<void> };
let volume: SecretVolume | undefined;
let mail: MailServer | undefined;
let operator: OperatorProcess | undefined;
let imap: Endpoint;
let pop3: Endpoint;
let smtp: Endpoint;

/** The group the auth workers run as: the volume's files get it, like a pod's fsGroup. */
function dovecotGid(): number {
  return Number(execFileSync("id", ["-g", "dovecot"], { encoding: "utf8" }).trim());
}

beforeAll(async () => {
  const kubeconfig = inject("kubeconfig");
  ns = await withNamespace(kubectl, "e2e-mail");
  passdbNs = await withNamespace(kubectl, "e2e-passdb");
  volume = await SecretVolume.start({
    kubeconfig,
    namespace: passdbNs.name,
    defaultMode: 0o440,
    fsGroup: dovecotGid(),
  });
  mail = await MailServer.start({ passdbDir: volume.dir });
  imap = { host: mail.host, port: mail.ports.imap };
  pop3 = { host: mail.host, port: mail.ports.pop3 };
  smtp = { host: mail.host, port: mail.ports.smtp };
  operator = await OperatorProcess.startRunning({ args: [
    "--kubeconfig", kubeconfig,
    "--namespace", ns.name,
    "--passdb-namespace", passdbNs.name,
    "--passdb-shards", "4",
    "--doveadm-url", mail.doveadmUrl,
    "--doveadm-api-key-file", mail.doveadmApiKeyFile,
  ] }); // prettier-ignore
});

afterAll(async () => {
  await operator?.dispose();
  await mail?.stop();
  await volume?.stop();
  await ns?.dispose();
  await passdbNs?.dispose();
});

afterEach(async ({ task }) => {
  if (task.result?.state !== "fail") return;
  const tail = (text: string | undefined, n = 40) => (text ?? "").split("\n").slice(-n).join("\n");
  console.error(`--- dovecot log\n${tail(await mail?.dovecotLog())}`);
  console.error(`--- postfix log\n${tail(await mail?.postfixLog(), 20)}`);
  console.error(`--- operator log\n${tail(await operator?.logText(), 20)}`);
});

/**
 * What a cluster administrator does first where MailDomain exists: apply examples/domain/ and
 * label the namespace the way its namespaceSelector admits.
 */
async function admitDomain(namespace: string): Promise<void> {
  if (!existsSync(domainExamples)) return;
  await kubectl.ok([
    "label",
    "namespace",
    namespace,
    "mail.devicepass.io/domain.example.com=admitted",
    "--overwrite",
  ]);
  await kubectl.ok(["apply", "-f", domainExamples]);
}

const password = (device: Device) => devicePassword(kubectl, ns.name, secretNames[device]);

async function expectImap(user: string, pass: string, accepted: boolean): Promise<void> {
  const result = await imapLogin(imap, user, pass);
  if (accepted) expect(result.response, "IMAP LOGIN").toMatch(/^a1 OK/);
  else expect(result.response, "IMAP LOGIN").toMatch(imapRefused);
}

async function expectPop3(user: string, pass: string, accepted: boolean): Promise<void> {
  const result = await pop3Login(pop3, user, pass);
  if (accepted) expect(result.response, "POP3 PASS").toMatch(/^\+OK/);
  else expect(result.response, "POP3 PASS").toMatch(pop3Refused);
}

async function expectSmtp(user: string, pass: string, accepted: boolean): Promise<void> {
  const result = await smtpAuth(smtp, user, pass);
  if (accepted) expect(result.response, "SMTP AUTH").toMatch(/^235 /);
  else expect(result.response, "SMTP AUTH").toMatch(smtpRefused);
}

describe("Dovecot and Postfix accept device passwords (issue 4)", () => {
  it("accepts each device's password from its Secret over IMAP and POP3, and refuses a wrong one", async () => {
    await admitDomain(ns.name);
    await kubectl.ok(["apply", "-n", ns.name, "-f", examples]);
    await kubectl.ok([
      "wait",
      "-n",
      ns.name,
      "--for=condition=Ready",
      "--timeout=60s",
      "maildevice",
      "--all",
    ]);
    for (const device of ["alice-iphone", "alice-laptop-bob"] as const) {
      const pass = await password(device);
      // The database reaches the volume a moment after the Secret: that is the only wait.
      await eventually(() => expectImap(address, pass, true), 30_000);
      await expectPop3(address, pass, true);
      await expectImap(address, `${pass}x`, false);
      await expectPop3(address, `${pass}x`, false);
    }
    // auth_username_format = %Lu: the address is case-insensitive, as mail clients expect.
    await expectImap("Alice@Example.COM", await password("alice-iphone"), true);
    await expectImap("nobody@example.com", await password("alice-iphone"), false);
    // The Lua passdb runs in auth workers (blocking=yes) that are not root.
    const workers = await mail!.authWorkerUids();
    expect(workers.length, "running auth workers").toBeGreaterThan(0);
    expect(workers).not.toContain(0);
    // The passdb names the device that logged in (userdb_device), seen in the mail log prefix.
    const log = await mail!.dovecotLog();
    expect(log).toContain(`imap(${address})<${ns.name}/alice-iphone>`);
    expect(log).toContain(`pop3(${address})<${ns.name}/alice-laptop-bob>`);
  });

  it("lets the smtp-only device send through Postfix with SMTP AUTH, but not open IMAP or POP3", async () => {
    const printer = await password("alice-printer");
    const sent = await smtpAuth(smtp, address, printer, {
      send: { from: address, to: "someone@example.net" },
    });
    expect(sent.response).toMatch(/^235 /);
    expect(sent.sendResponse).toMatch(/^250 .*queued as/);
    await expectImap(address, printer, false);
    await expectPop3(address, printer, false);
    // A device with every protocol may send too; a wrong password may not.
    await expectSmtp(address, await password("alice-iphone"), true);
    await expectSmtp(address, `${printer}x`, false);
  });

  it("refuses the old password and accepts the new one after kubectl annotate … rotate", async () => {
    const old = await password("alice-iphone");
    await kubectl.ok([
      "annotate", "-n", ns.name, "maildevice", "alice-iphone",
      `mail.devicepass.io/rotate=${Date.now()}`, "--overwrite",
    ]); // prettier-ignore
    const fresh = await eventually(async () => {
      const p = await password("alice-iphone");
      expect(p).not.toBe(old);
      return p;
    });
    await eventually(() => expectImap(address, old, false), 30_000);
    await eventually(() => expectImap(address, fresh, true), 30_000);
    await expectSmtp(address, old, false);
    // The other devices keep working.
    await expectImap(address, await password("alice-laptop-bob"), true);
  });

  it("refuses a deleted device's password and closes the address's open IMAP session", async () => {
    const bob = await password("alice-laptop-bob");
    const session = await imapLogin(imap, address, bob, { keepOpen: true });
    expect(session.response).toMatch(/^a1 OK/);
    const connection = session.connection!;
    expect(await imapNoop(connection)).toMatch(/^n1 OK/);

    await kubectl.ok(["delete", "-n", ns.name, "maildevice", "alice-laptop-bob"]);
    await eventually(() => expectImap(address, bob, false), 30_000);
    // doveadm kick from the operator: Dovecot says BYE and hangs up.
    const closed = await Promise.race([
      connection.closed.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 30_000)),
    ]);
    connection.close();
    expect(closed, "the open IMAP session was closed").toBe(true);
    expect(await connection.readLine().catch(() => "(nothing)"), "Dovecot's last word").toMatch(/^\* BYE/);
    // The remaining devices still work.
    await expectImap(address, await password("alice-iphone"), true);
  });

  it("finds the file of an address whose key escapes characters, whatever the login's case", async () => {
    // `_` is escaped (`_5f`) and capitals are lowered: the Lua script must name the file exactly
    // as addressKey() does, or this login finds no devices.
    const objects = [
      { apiVersion: "mail.devicepass.io/v1alpha1", kind: "MailAddress", metadata: { name: "mary" }, spec: { address: "Mary_Ann.O-Brien@Example.com" } },
      { apiVersion: "mail.devicepass.io/v1alpha1", kind: "MailDevice", metadata: { name: "mary-phone" }, spec: { address: "mary", displayName: "Mary's phone", protocols: ["imap"] } },
    ]; // prettier-ignore
    await kubectl.ok(
      ["apply", "-n", ns.name, "-f", "-"],
      objects.map((o) => JSON.stringify(o)).join("\n---\n"),
    );
    await kubectl.ok([
      "wait",
      "-n",
      ns.name,
      "--for=condition=Ready",
      "--timeout=60s",
      "maildevice",
      "mary-phone",
    ]);
    const pass = await devicePassword(kubectl, ns.name, "mary-phone-mail-credentials");
    await eventually(() => expectImap("mary_ann.o-brien@example.com", pass, true), 30_000);
    await expectImap("MARY_ANN.O-BRIEN@EXAMPLE.COM", pass, true);
    await expectPop3("mary_ann.o-brien@example.com", pass, false); // imap only
    await kubectl.ok(["delete", "-n", ns.name, "maildevice", "mary-phone"]);
    await eventually(() => expectImap("mary_ann.o-brien@example.com", pass, false), 30_000);
  });

  it("accepts no device password after kubectl delete maildevices --all", async () => {
    const iphone = await password("alice-iphone");
    const printer = await password("alice-printer");
    await kubectl.ok(["delete", "-n", ns.name, "maildevices", "--all"]);
    await eventually(() => expectImap(address, iphone, false), 30_000);
    await eventually(() => expectSmtp(address, printer, false), 30_000);
    await expectPop3(address, iphone, false);
    await expectSmtp(address, iphone, false);
  });
});

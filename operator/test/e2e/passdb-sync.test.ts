// End to end with the mail-server side as it runs in a pod (issue 13): the operator as a process,
// `devicepass passdb-sync` as a second process writing the database folder Dovecot reads (no test
// mirror), with its own doveadm access to flush and kick, and Dovecot's Lua passdb stamping logins.
// The operator has no doveadm access here, so every cut session is the sidecar's doing.
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { MailServer } from "../../harness/dovecot.ts";
import { imapLogin, imapNoop, type Endpoint } from "../../harness/mail-clients.ts";
import { OperatorProcess } from "../../harness/operator-process.ts";
import { PassdbSyncProcess, dovecotGroup } from "../../harness/passdb-sync.ts";
import { defaultSyncReportName, readSyncReport } from "../../src/passdb/sync-report.ts";
import { addressKey } from "../../src/passdb/format.ts";
import { devicePassword } from "../operator-support.ts";
import { adminKubectl, consistently, eventually, withNamespace } from "../support.ts";

const kubectl = adminKubectl();
const examples = join(import.meta.dirname, "..", "..", "..", "examples", "mail");
const domainExamples = join(import.meta.dirname, "..", "..", "..", "examples", "domain");
const address = "alice@example.com";
const imapRefused = /^a1 NO \[AUTHENTICATIONFAILED\]/;
/** Short, so that the budget of writes shows within a test; the default is 300. */
const precisionSeconds = 3;

let ns: { name: string; dispose: () => Promise<void> };
let passdbNs: { name: string; dispose: () => Promise<void> };
let sync: PassdbSyncProcess | undefined;
let mail: MailServer | undefined;
let operator: OperatorProcess | undefined;
let imap: Endpoint;

beforeAll(async () => {
  const kubeconfig = inject("kubeconfig");
  ns = await withNamespace(kubectl, "e2e-sync-mail");
  passdbNs = await withNamespace(kubectl, "e2e-sync-passdb");
  const folders = await PassdbSyncProcess.folders();
  mail = await MailServer.start({
    passdbDir: folders.passdbDir,
    stampDir: folders.stampDir,
    stampIntervalSeconds: 1,
  });
  imap = { host: mail.host, port: mail.ports.imap };
  sync = await PassdbSyncProcess.start({
    kubeconfig,
    namespace: passdbNs.name,
    shards: 4,
    dirs: folders,
    stamps: true,
    doveadm: { url: mail.doveadmUrl, apiKeyFile: mail.doveadmApiKeyFile },
    args: ["--stamp-scan-seconds", "1", "--report-interval-seconds", "1", "--pod-name", "dovecot-0"],
  });
  operator = await OperatorProcess.startRunning({ args: [
    "--kubeconfig", kubeconfig,
    "--namespace", ns.name,
    "--passdb-namespace", passdbNs.name,
    "--passdb-shards", "4",
    "--last-used-precision-seconds", String(precisionSeconds),
  ] }); // prettier-ignore
  await kubectl.ok([
    "label",
    "namespace",
    ns.name,
    "mail.devicepass.io/domain.example.com=admitted",
    "--overwrite",
  ]);
  await kubectl.ok(["apply", "-f", domainExamples]);
  await kubectl.ok(["apply", "-n", ns.name, "-f", examples]);
  await kubectl.ok(["wait", "-n", ns.name, "--for=condition=Ready", "--timeout=60s", "maildevice", "--all"]);
});

afterAll(async () => {
  await operator?.dispose();
  await sync?.stop();
  await mail?.stop();
  await ns?.dispose();
  await passdbNs?.dispose();
});

afterEach(async ({ task }) => {
  if (task.result?.state !== "fail") return;
  const tail = (text: string | undefined, n = 40) => (text ?? "").split("\n").slice(-n).join("\n");
  console.error(`--- dovecot log\n${tail(await mail?.dovecotLog())}`);
  console.error(`--- passdb-sync log\n${tail(await sync?.log())}`);
  console.error(`--- operator log\n${tail(await operator?.logText(), 20)}`);
});

const password = (secret: string) => devicePassword(kubectl, ns.name, secret);

async function expectImap(user: string, pass: string, accepted: boolean): Promise<void> {
  const result = await imapLogin(imap, user, pass);
  if (accepted) expect(result.response, "IMAP LOGIN").toMatch(/^a1 OK/);
  else expect(result.response, "IMAP LOGIN").toMatch(imapRefused);
}

interface DeviceJson {
  metadata: { resourceVersion: string; managedFields?: { manager: string; subresource?: string }[] };
  status?: { lastUsedAt?: string };
}

async function device(name: string): Promise<DeviceJson> {
  return JSON.parse(
    await kubectl.ok(["get", "-n", ns.name, "maildevice", name, "-o", "json", "--show-managed-fields"]),
  ) as DeviceJson;
}

/** The report as the operator reads it. */
async function report() {
  const cm = JSON.parse(
    await kubectl.ok(["get", "configmap", "-n", passdbNs.name, defaultSyncReportName, "-o", "json"]),
  ) as { data?: Record<string, string> };
  return readSyncReport(cm.data, new Date());
}

describe("passdb-sync beside Dovecot (issue 13)", () => {
  it("writes each address's file, readable by Dovecot's group only, and Dovecot accepts the passwords", async () => {
    const iphone = await password("alice-iphone-mail-credentials");
    await eventually(() => expectImap(address, iphone, true), 30_000);
    const file = await stat(join(sync!.passdbDir, addressKey(address)));
    expect(file.mode & 0o777).toBe(0o440);
    expect(file.gid).toBe(dovecotGroup());
    // The report says which version of each shard is on disk, and the sidecar is in sync.
    const { reports, problems } = await report();
    expect(problems).toEqual([]);
    expect(reports.map((r) => [r.pod, r.synced, r.shards.size])).toEqual([["dovecot-0", true, 4]]);
  });

  it("refuses the old password after a rotation, and reports the shard's new version", async () => {
    const old = await password("alice-iphone-mail-credentials");
    await kubectl.ok([
      "annotate", "-n", ns.name, "maildevice", "alice-iphone",
      `mail.devicepass.io/rotate=${Date.now()}`, "--overwrite",
    ]); // prettier-ignore
    const fresh = await eventually(async () => {
      const p = await password("alice-iphone-mail-credentials");
      expect(p).not.toBe(old);
      return p;
    });
    await eventually(() => expectImap(address, old, false), 30_000);
    await expectImap(address, fresh, true);
    // The shard holding alice's file, at the version the API server has now, is on the sidecar's disk.
    const shards = JSON.parse(
      await kubectl.ok([
        "get", "secrets", "-n", passdbNs.name, "-l", "app.kubernetes.io/component=passdb", "-o", "json",
      ]), // prettier-ignore
    ) as { items: { metadata: { name: string; resourceVersion: string }; data?: Record<string, string> }[] };
    const shard = shards.items.find((s) => s.data?.[addressKey(address)] !== undefined)!;
    await eventually(async () => {
      const applied = (await report()).reports[0]!.shards.get(shard.metadata.name);
      expect(BigInt(applied ?? "0")).toBeGreaterThanOrEqual(BigInt(shard.metadata.resourceVersion));
    });
    // And the device's status says so: the mail server, not only the API server, has the password.
    await eventually(async () => {
      const device = await kubectl.json<{ status: { conditions: { type: string; status: string; reason: string }[] } }>([
        "get", "maildevice", "alice-iphone", "-n", ns.name,
      ]); // prettier-ignore
      expect(device.status.conditions.find((c) => c.type === "MailServerSynced")).toMatchObject({
        status: "True",
        reason: "MailServerUpToDate",
      });
    });
    await kubectl.ok([
      "wait",
      "-n",
      ns.name,
      "--for=condition=MailServerSynced",
      "--timeout=30s",
      "maildevice",
      "--all",
    ]);
  });

  it("refuses a deleted device's password and cuts its open session (the sidecar's kick)", async () => {
    const bob = await password("alice-laptop-bob-mail-credentials");
    const session = await imapLogin(imap, address, bob, { keepOpen: true });
    expect(session.response).toMatch(/^a1 OK/);
    const connection = session.connection!;
    expect(await imapNoop(connection)).toMatch(/^n1 OK/);
    await kubectl.ok(["delete", "-n", ns.name, "maildevice", "alice-laptop-bob"]);
    await eventually(() => expectImap(address, bob, false), 30_000);
    const closed = await Promise.race([
      connection.closed.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 30_000)),
    ]);
    connection.close();
    expect(closed, "the open IMAP session was closed").toBe(true);
    expect(await sync!.log()).toContain("Open sessions were closed.");
    await expectImap(address, await password("alice-iphone-mail-credentials"), true);
  });

  it("sets status.lastUsedAt after a login, shows it as LAST USED, and writes it at most once per interval", async () => {
    const iphone = await password("alice-iphone-mail-credentials");
    await expectImap(address, iphone, true);
    const first = await eventually(async () => {
      const d = await device("alice-iphone");
      expect(d.status?.lastUsedAt).toBeDefined();
      return d;
    }, 30_000);
    expect(
      first.metadata.managedFields?.some(
        (f) => f.manager === "devicepass-last-used" && f.subresource === "status",
      ),
    ).toBe(true);
    const table = await kubectl.ok(["get", "-n", ns.name, "maildevices"]);
    expect(table.split("\n")[0]).toMatch(/\bLAST USED\b/);
    // The device that logged in shows an age under LAST USED (kubectl leaves it blank otherwise),
    // then ROTATED and AGE.
    expect(table.split("\n").find((l) => l.startsWith("alice-iphone "))).toMatch(
      /\sTrue\s+\d+[smh]\S*\s+\d+[smh]\S*\s+\d+[smh]\S*$/,
    );

    // Logins as fast as a client reconnects, for several precision intervals: every value written
    // is at least one interval after the one before, and no more writes than intervals passed.
    const values = new Set<string>([first.status!.lastUsedAt!]);
    const started = Date.now();
    while (Date.now() - started < 4 * precisionSeconds * 1000) {
      await expectImap(address, iphone, true);
      const value = (await device("alice-iphone")).status?.lastUsedAt;
      if (value) values.add(value);
      await new Promise((r) => setTimeout(r, 200));
    }
    const elapsedSeconds = (Date.now() - Date.parse(first.status!.lastUsedAt!)) / 1000;
    const written = [...values].map((v) => Date.parse(v)).sort((a, b) => a - b);
    expect(written.length).toBeGreaterThan(1);
    expect(written.length).toBeLessThanOrEqual(Math.floor(elapsedSeconds / precisionSeconds) + 1);
    for (let i = 1; i < written.length; i++)
      expect(written[i]! - written[i - 1]!).toBeGreaterThanOrEqual(precisionSeconds * 1000);
  });

  it("removes the file of an address whose devices are all deleted", async () => {
    const iphone = await password("alice-iphone-mail-credentials");
    await kubectl.ok(["delete", "-n", ns.name, "maildevices", "--all"]);
    await eventually(() => expectImap(address, iphone, false), 30_000);
    await eventually(async () => {
      await expect(stat(join(sync!.passdbDir, addressKey(address)))).rejects.toThrow(/ENOENT/);
    });
    // And it stays gone.
    await consistently(async () => {
      await expect(stat(join(sync!.passdbDir, addressKey(address)))).rejects.toThrow(/ENOENT/);
    }, 1000);
  });
});

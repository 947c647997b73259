// Invitations end to end, as an administrator and the invited person see them, with real parts
// only: kubectl applies MailDevices with delivery Invitation; the operator runs as its own process
// with --portal-url and an SMTP relay (Debian's Postfix, SMTP AUTH through Dovecot, behind a gate
// that can play a relay outage); the portal runs as its own process with nothing but the chart's
// Role; links are read from their Secrets with kubectl, or from the e-mail read back over IMAP, and
// opened in Debian's headless Chromium; the passwords shown log in to Dovecot, which reads the
// database through `devicepass passdb-sync`. Screenshots go to .artifacts/invitations/.
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ImapFlow } from "imapflow";
import { simpleParser, type ParsedMail } from "mailparser";
import type { BrowserContext, Page } from "puppeteer-core";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { launchChromium, type HeadlessChromium } from "../../harness/browser.ts";
import { MailServer } from "../../harness/dovecot.ts";
import { imapLogin, type Endpoint } from "../../harness/mail-clients.ts";
import { OperatorProcess } from "../../harness/operator-process.ts";
import { ownedTempDir } from "../../harness/owned-dir.ts";
import { PassdbSyncProcess } from "../../harness/passdb-sync.ts";
import { PortalCli, portalAccount } from "../../harness/portal-cli.ts";
import { SmtpGate } from "../../harness/smtp-gate.ts";
import { addressKey } from "../../src/passdb/format.ts";
import { invitationUrl, openLink, recordOf, tokenOf } from "../invitation-support.ts";
import { repoRoot } from "../install-support.ts";
import { secretData } from "../operator-support.ts";
import { adminKubectl, eventually, withNamespace } from "../support.ts";

const kubectl = adminKubectl();
const artifacts = join(repoRoot, ".artifacts", "invitations");
const examples = join(repoRoot, "examples");
const alice = "alice@example.com";
const person = "bob@example.org";
const relayUser = "invitations@example.com";
const imapRefused = /^a1 NO \[AUTHENTICATIONFAILED\]/;

let tenant: { name: string; dispose: () => Promise<void> };
let release: { name: string; dispose: () => Promise<void> };
let passdbNs: { name: string; dispose: () => Promise<void> };
let mail: MailServer;
let gate: SmtpGate;
let sync: PassdbSyncProcess;
let account: { kubeconfig: string; dispose: () => Promise<void> };
let portal: PortalCli;
let operator: OperatorProcess;
let chromium: HeadlessChromium;
let credentialsDir: string;
let imap: Endpoint;
let personPassword: string;
/** Every password a page showed: the scan at the end looks for each everywhere. */
const revealed: string[] = [];
/** POST (the button) to the first working IMAP login, per sample. */
const samples: { device: string; pageMs: number; databaseMs: number; loginMs: number }[] = [];

const mailDevice = (name: string, spec: string) => `apiVersion: mail.devicepass.io/v1alpha1
kind: MailDevice
metadata:
  name: ${name}
spec:
  address: alice
  delivery: Invitation
${spec}`;

/** The administrator who invites; the created-by policy records the real requester. */
const inviter = "Ana Admin";
const asInviter = ["--as", inviter, "--as-group", "system:masters"];

/** `kubectl apply` as the inviter, from a file or from `yaml`. */
async function apply(yaml: string, options: { file?: string } = {}): Promise<void> {
  await kubectl.ok(
    [...asInviter, "apply", "-n", tenant.name, "-f", options.file ?? "-"],
    options.file ? undefined : yaml,
  );
}

async function deviceStatus(name: string) {
  return (await kubectl.json<{ status?: { invitation?: { state: string; sentAt?: string } } }>([
      "get", "maildevice", name, "-n", tenant.name,
    ])) // prettier-ignore
  .status;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

async function newPage(context: BrowserContext, language: "en" | "es" = "en"): Promise<Page> {
  const page = await context.newPage();
  await page.setViewport({ width: 820, height: 900 });
  await page.setExtraHTTPHeaders({
    "Accept-Language": language === "es" ? "es-ES,es;q=0.9" : "en-GB,en;q=0.9",
  });
  return page;
}

const pageStatusIn = (page: Page) =>
  page.evaluate(`document.querySelector("[data-status]")?.getAttribute("data-status") ?? null`) as Promise<
    string | null
  >;

/** The link a device's Secret holds, once the operator wrote it (and, given `not`, another one). */
async function linkOf(device: string, not?: string): Promise<string> {
  return eventually(async () => {
    const link = await invitationUrl(kubectl, tenant.name, device);
    if (link === not) throw new Error("still the old link");
    return link;
  }, 30_000);
}

/** Every message in the person's mailbox, parsed, read over IMAP as the person. */
async function mailbox(): Promise<{ parsed: ParsedMail; source: string }[]> {
  const client = new ImapFlow({
    host: mail.host,
    port: mail.ports.imap,
    secure: false,
    doSTARTTLS: false,
    auth: { user: person, pass: personPassword },
    logger: false,
  });
  await client.connect();
  try {
    const lock = await client.getMailboxLock("INBOX");
    try {
      const out: { parsed: ParsedMail; source: string }[] = [];
      if ((client.mailbox as { exists: number }).exists === 0) return out;
      for await (const message of client.fetch("1:*", { source: true }))
        if (message.source)
          out.push({ parsed: await simpleParser(message.source), source: message.source.toString("utf8") });
      return out;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

/** Waits for the `count`th e-mail whose subject names `displayName`; returns it. */
async function invitationMail(
  displayName: string,
  count = 1,
): Promise<{ parsed: ParsedMail; source: string }> {
  return eventually(
    async () => {
      const found = (await mailbox()).filter((m) => m.parsed.subject?.includes(displayName));
      if (found.length < count) throw new Error(`${found.length} e-mails for ${displayName} so far`);
      return found[count - 1]!;
    },
    60_000,
    250,
  );
}

/** Does the database folder Dovecot reads (passdb-sync's) hold an entry of `device` now? */
async function inDatabase(device: string): Promise<boolean> {
  const text = await readFile(join(sync.passdbDir, addressKey(alice)), "utf8").catch(() => "");
  return text.includes(`\t${tenant.name}/${device}\t`);
}

/**
 * Opens the link in Chromium, presses the button, reads the password off the page, then measures
 * how long from the button until Dovecot takes it: the database folder holds the entry (polled
 * every 10 ms), and an IMAP login with it works (the first attempt: a failed one would cost
 * Dovecot's delay on failures).
 */
async function revealAndLogIn(
  device: string,
  link: string,
  options: { language?: "en" | "es"; shots?: string; page?: Page } = {},
): Promise<{ password: string; page: Page; context?: BrowserContext }> {
  const context = options.page ? undefined : await chromium.browser.createBrowserContext();
  const page = options.page ?? (await newPage(context!, options.language));
  if (!options.page) {
    const res = await page.goto(link);
    expect(res?.status()).toBe(200);
  }
  // Who invited, as the created-by policy recorded the request's user.
  expect(await page.evaluate(`document.querySelector("dl.facts")?.textContent ?? ""`)).toContain(inviter);
  if (options.shots) await shot(page, `${options.shots}-invitation`);
  const clicked = performance.now();
  const [response] = await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
  expect(response?.status()).toBe(200);
  const password = (await page.evaluate(`document.getElementById("password").textContent`)) as string;
  const shown = performance.now();
  expect(password).toMatch(/^[A-Za-z0-9]{24}$/);
  revealed.push(password);
  while (!(await inDatabase(device))) {
    if (performance.now() - clicked > 30_000) throw new Error(`${device} never reached the database`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const inDb = performance.now();
  const login = await imapLogin(imap, alice, password);
  expect(login.response, "IMAP LOGIN with the password the page showed").toMatch(/^a1 OK/);
  samples.push({
    device,
    pageMs: Math.round(shown - clicked),
    databaseMs: Math.round(inDb - clicked),
    loginMs: Math.round(performance.now() - clicked),
  });
  if (options.shots) await shot(page, `${options.shots}-password`);
  return { password, page, context };
}

async function expectRefused(password: string): Promise<void> {
  await eventually(
    async () => {
      const login = await imapLogin(imap, alice, password);
      expect(login.response).toMatch(imapRefused);
    },
    30_000,
    500,
  );
}

async function writeRelayCredentials(password: string): Promise<void> {
  await writeFile(join(credentialsDir, "username"), relayUser);
  await writeFile(join(credentialsDir, "password"), `${password}\n`);
}

beforeAll(async () => {
  const kubeconfig = inject("kubeconfig");
  await rm(artifacts, { recursive: true, force: true });
  await mkdir(artifacts, { recursive: true });
  tenant = await withNamespace(kubectl, "e2e-invite");
  release = await withNamespace(kubectl, "e2e-invite-release");
  passdbNs = await withNamespace(kubectl, "e2e-invite-passdb");
  const folders = await PassdbSyncProcess.folders();
  mail = await MailServer.start({ passdbDir: folders.passdbDir, deliverDomains: ["example.org"] });
  imap = { host: mail.host, port: mail.ports.imap };
  gate = await SmtpGate.start({ host: mail.host, port: mail.ports.smtp });
  sync = await PassdbSyncProcess.start({
    kubeconfig,
    namespace: passdbNs.name,
    shards: 4,
    dirs: folders,
    doveadm: { url: mail.doveadmUrl, apiKeyFile: mail.doveadmApiKeyFile },
  });
  // The portal with exactly the chart's Role and admission policy, in the operator's namespace.
  account = await portalAccount(kubectl, kubeconfig, release.name);
  portal = await PortalCli.start({ kubeconfig: account.kubeconfig, namespace: release.name });
  credentialsDir = await ownedTempDir("devicepass-relay-");
  operator = await OperatorProcess.startRunning({ args: [
    "--kubeconfig", kubeconfig,
    "--namespace", tenant.name,
    "--operator-namespace", release.name,
    "--passdb-namespace", passdbNs.name,
    "--passdb-shards", "4",
    "--no-require-mail-domain",
    "--min-rotation-interval", "1s",
    "--portal-url", portal.url,
    "--smtp-host", gate.host,
    "--smtp-port", String(gate.port),
    "--smtp-security", "none",
    "--smtp-from", `devicepass <${relayUser}>`,
    "--smtp-credentials-dir", credentialsDir,
    "--log-level", "debug",
  ] }); // prettier-ignore
  // The mailbox alice's devices log in to; the relay's own account; the person's mailbox.
  await kubectl.ok(["apply", "-n", tenant.name, "-f", join(examples, "mail", "alice.yaml")]);
  await kubectl.ok(
    ["apply", "-n", tenant.name, "-f", "-"],
    `apiVersion: v1
kind: List
items:
  - apiVersion: mail.devicepass.io/v1alpha1
    kind: MailAddress
    metadata: {name: relay}
    spec: {address: ${relayUser}}
  - apiVersion: mail.devicepass.io/v1alpha1
    kind: MailDevice
    metadata: {name: relay-account}
    spec: {address: relay, displayName: Invitation sender, icon: server, protocols: [smtp]}
  - apiVersion: mail.devicepass.io/v1alpha1
    kind: MailAddress
    metadata: {name: bob}
    spec: {address: ${person}}
  - apiVersion: mail.devicepass.io/v1alpha1
    kind: MailDevice
    metadata: {name: bob-mailbox}
    spec: {address: bob, displayName: Bob's mail program, icon: laptop, protocols: [imap]}
`,
  );
  await kubectl.ok([
    "wait", "-n", tenant.name, "--for=condition=Ready", "--timeout=60s", "maildevice/relay-account", "maildevice/bob-mailbox",
  ]); // prettier-ignore
  // The relay's credentials as the chart mounts them: the files of a basic-auth Secret.
  await writeRelayCredentials(
    (await secretData(kubectl, tenant.name, "relay-account-mail-credentials")).password!,
  );
  personPassword = (await secretData(kubectl, tenant.name, "bob-mailbox-mail-credentials")).password!;
  await eventually(
    async () => expect((await imapLogin(imap, person, personPassword)).ok).toBe(true),
    30_000,
    500,
  );
  chromium = await launchChromium();
});

afterAll(async () => {
  if (samples.length > 0) {
    await writeFile(join(artifacts, "post-to-login.json"), JSON.stringify(samples, null, 2));
    console.log(
      `button (POST) → page with the password / entry in Dovecot's database folder / working IMAP login, ms:\n${samples
        .map((s) => `  ${s.device}: ${s.pageMs} / ${s.databaseMs} / ${s.loginMs}`)
        .join("\n")}`,
    );
  }
  await chromium?.close();
  await operator?.dispose();
  await portal?.stop();
  await account?.dispose();
  await sync?.stop();
  await gate?.stop();
  await mail?.stop();
  if (credentialsDir) await rm(credentialsDir, { recursive: true, force: true });
  await tenant?.dispose();
  await release?.dispose();
  await passdbNs?.dispose();
});

afterEach(async ({ task }) => {
  if (task.result?.state !== "fail") return;
  const tail = (text: string | undefined, n = 40) => (text ?? "").split("\n").slice(-n).join("\n");
  console.error(`--- operator log\n${tail(await operator?.logText(), 40)}`);
  console.error(`--- portal log\n${tail(await portal?.log(), 20)}`);
  console.error(`--- passdb-sync log\n${tail(await sync?.log(), 20)}`);
  console.error(`--- postfix log\n${tail(await mail?.postfixLog(), 30)}`);
  console.error(`--- dovecot log\n${tail(await mail?.dovecotLog(), 30)}`);
});

describe("an invitation as an administrator and the person see it", () => {
  it("kubectl apply, the link from the Secret in Chromium, the button, the password logs in to Dovecot; reload says used", async () => {
    await apply(mailDevice("alice-tablet", "  displayName: Alice's tablet\n  icon: tablet\n"));
    const link = await linkOf("alice-tablet");
    expect(link.startsWith(`${portal.url}/i/`)).toBe(true);
    expect((await deviceStatus("alice-tablet"))?.invitation?.state).toBe("Pending");
    // GET consumes nothing (mail scanners open links): opened twice, still pending.
    expect((await openLink(link)).status).toBe(200);
    const { page, context } = await revealAndLogIn("alice-tablet", link, { shots: "1" });
    await kubectl.ok(["wait", "-n", tenant.name, "--for=condition=Ready", "--timeout=30s", "maildevice/alice-tablet"]); // prettier-ignore
    expect((await deviceStatus("alice-tablet"))?.invitation?.state).toBe("Redeemed");
    // Chromium resubmits the POST on reload: used, and nothing else.
    const again = await page.reload();
    expect(again?.status()).toBe(410);
    expect(await pageStatusIn(page)).toBe("used");
    await shot(page, "1-reload-used");
    await context!.close();
  });

  it("measures the button to a working IMAP login over several invitations", async () => {
    for (let i = 1; i <= 5; i++) {
      const name = `sample-${i}`;
      await apply(mailDevice(name, `  displayName: Sample ${i}\n`));
      const { context } = await revealAndLogIn(name, await linkOf(name));
      await context!.close();
    }
    expect(samples.length).toBeGreaterThanOrEqual(6);
    for (const s of samples) expect(s.loginMs).toBeGreaterThan(0);
  });

  it("e-mails the link through Postfix in the person's language; its link followed in Chromium gives a password that logs in", async () => {
    await apply("", { file: join(examples, "invitation", "alice-tablet-bob.yaml") });
    const { parsed, source } = await invitationMail("Bob's tablet");
    const link = await linkOf("alice-tablet-bob");
    expect(parsed.subject).toBe(`Configure Bob's tablet para ${alice}`);
    expect(parsed.from?.value).toEqual([{ name: "devicepass", address: relayUser }]);
    expect(parsed.to && "value" in parsed.to ? parsed.to.value.map((v) => v.address) : []).toEqual([person]);
    expect(parsed.text).toContain(link);
    const html = String(parsed.html);
    expect(/<a href="([^"]+)"/.exec(html)?.[1]).toBe(link);
    expect(html).toContain("Configurar el dispositivo");
    await eventually(async () =>
      expect((await deviceStatus("alice-tablet-bob"))?.invitation?.state).toBe("Sent"),
    );
    expect(source).toContain("Auto-Submitted: auto-generated");

    const context = await chromium.browser.createBrowserContext();
    const page = await newPage(context, "es");
    await page.setContent(html);
    await shot(page, "2-email-es");
    await Promise.all([page.waitForNavigation(), page.click("a")]);
    expect(page.url()).toBe(link);
    await revealAndLogIn("alice-tablet-bob", link, { page, shots: "2-from-email-es" });
    await context.close();
  });

  it("rotates: a new e-mail with a new link, the old password refused at Dovecot, the new link works", async () => {
    const before = await linkOf("alice-tablet-bob");
    const oldPassword = revealed.at(-1)!;
    expect((await imapLogin(imap, alice, oldPassword)).ok).toBe(true);
    await kubectl.ok([
      "annotate", "-n", tenant.name, "maildevice", "alice-tablet-bob", `mail.devicepass.io/rotate=${Date.now()}`, "--overwrite",
    ]); // prettier-ignore
    const after = await linkOf("alice-tablet-bob", before);
    await expectRefused(oldPassword);
    const second = await invitationMail("Bob's tablet", 2);
    expect(second.parsed.text).toContain(after);
    expect(second.parsed.text).not.toContain(before);
    expect((await openLink(before)).page).toBe("revoked");
    const context = await chromium.browser.createBrowserContext();
    const page = await newPage(context, "es");
    await page.goto(before);
    expect(await pageStatusIn(page)).toBe("revoked");
    await shot(page, "3-rotated-old-link-es");
    await context.close();
    const { context: c2 } = await revealAndLogIn("alice-tablet-bob", after);
    await c2!.close();
  });

  it("expires an unredeemed link on time: status Expired, the page says expired", async () => {
    await apply(mailDevice("short-lived", "  displayName: Short-lived\n  invitation: { validFor: 5s }\n"));
    const link = await linkOf("short-lived");
    await eventually(
      async () => expect((await deviceStatus("short-lived"))?.invitation?.state).toBe("Expired"),
      30_000,
      250,
    );
    expect((await recordOf(kubectl, release.name, link)).data.state).toBe("revoked");
    const context = await chromium.browser.createBrowserContext();
    const page = await newPage(context);
    const res = await page.goto(link);
    expect(res?.status()).toBe(410);
    expect(await pageStatusIn(page)).toBe("expired");
    expect(await page.$("form")).toBeNull();
    await shot(page, "4-expired");
    await context.close();
  });

  it("deletes: the password refused at Dovecot, the link says withdrawn", async () => {
    const link = await linkOf("alice-tablet");
    const password = revealed[0]!;
    expect((await imapLogin(imap, alice, password)).ok).toBe(true);
    await kubectl.ok(["delete", "maildevice", "alice-tablet", "-n", tenant.name, "--timeout=60s"]);
    await expectRefused(password);
    expect(
      (await kubectl.run(["get", "secret", "alice-tablet-invitation", "-n", tenant.name])).code,
    ).not.toBe(0);
    const context = await chromium.browser.createBrowserContext();
    const page = await newPage(context);
    expect((await page.goto(link))?.status()).toBe(410);
    expect(await pageStatusIn(page)).toBe("revoked");
    await shot(page, "5-deleted-withdrawn");
    await context.close();
  });

  it("retries a failed e-mail with backoff, and never e-mails a link forged into the Secret meanwhile", async () => {
    gate.closed = true;
    await apply(
      mailDevice(
        "carol-phone",
        `  displayName: Carol's phone\n  icon: phone\n  invitation: { email: ${person} }\n`,
      ),
    );
    const events = () =>
      kubectl.ok(["get", "events", "-n", tenant.name, "--field-selector", "involvedObject.name=carol-phone"]);
    // Retried on its own, with backoff: a second attempt some 5 s after the first, both refused.
    const failures = await eventually(
      async () => {
        const list = await kubectl.json<{ items: { reason: string; firstTimestamp: string; message: string }[] }>([
          "get", "events", "-n", tenant.name, "--field-selector", "involvedObject.name=carol-phone,reason=InvitationMailFailed",
        ]); // prettier-ignore
        expect(list.items.length).toBeGreaterThanOrEqual(2);
        return list.items
          .map((e) => ({ at: Date.parse(e.firstTimestamp), message: e.message }))
          .sort((a, b) => a.at - b.at);
      },
      30_000,
      250,
    );
    expect(failures[1]!.at - failures[0]!.at).toBeGreaterThanOrEqual(4000);
    expect(failures[0]!.message).toMatch(/could not be e-mailed to bob@example.org: .*421/);
    expect(gate.refused).toBeGreaterThanOrEqual(2);
    expect((await deviceStatus("carol-phone"))?.invitation?.state).toBe("Pending");
    // The namespace's user puts a link of their own into the Secret, hoping the operator mails it.
    const forged = "https://portal.evil.example/i/" + "B".repeat(43);
    await kubectl.ok([
      "patch", "secret", "carol-phone-invitation", "-n", tenant.name, "--type=merge",
      "-p", JSON.stringify({ stringData: { url: forged } }),
    ]); // prettier-ignore
    gate.closed = false;
    const { parsed, source } = await invitationMail("Carol's phone");
    const link = await linkOf("carol-phone", forged);
    expect(parsed.text).toContain(link);
    expect(link.startsWith(`${portal.url}/i/`)).toBe(true);
    expect(tokenOf(link)).not.toBe("B".repeat(43));
    expect(source).not.toContain("evil.example");
    for (const m of await mailbox()) expect(m.source).not.toContain("evil.example");
    expect(await events()).toContain("InvitationReplaced");
    expect((await openLink(link)).status).toBe(200);
  });

  it("leaves the passwords in no Secret, ConfigMap, log line, event or status anywhere in the cluster", async () => {
    expect(revealed.length).toBeGreaterThanOrEqual(8);
    const decoded = (json: string) => {
      const list = JSON.parse(json) as { items: { data?: Record<string, string> }[] };
      return list.items
        .flatMap((s) => Object.values(s.data ?? {}).map((v) => Buffer.from(v, "base64").toString("utf8")))
        .join("\n");
    };
    const places: Record<string, string> = {
      "Secrets (metadata)": await kubectl.ok(["get", "secrets", "-A", "-o", "json"]),
      "Secrets (data)": decoded(await kubectl.ok(["get", "secrets", "-A", "-o", "json"])),
      ConfigMaps: await kubectl.ok(["get", "configmaps", "-A", "-o", "json"]),
      events: await kubectl.ok(["get", "events", "-A", "-o", "json"]),
      "MailDevices and MailAddresses": await kubectl.ok([
        "get",
        "maildevices,mailaddresses",
        "-A",
        "-o",
        "json",
      ]),
      "the operator's log": await operator.logText(),
      "the portal's log": await portal.log(),
      "passdb-sync's log": await sync.log(),
      "Dovecot's log": await mail.dovecotLog(),
      "Postfix's log": await mail.postfixLog(),
      "the e-mails": (await mailbox()).map((m) => m.source).join("\n"),
    };
    const leaks = Object.entries(places).flatMap(([where, text]) =>
      revealed.filter((p) => text.includes(p)).map(() => where),
    );
    expect(leaks).toEqual([]);
    // Nor any link's token in a log line.
    for (const where of ["the operator's log", "the portal's log"] as const)
      expect(places[where]).not.toMatch(/\/i\/[A-Za-z0-9_-]{43}/);
  });
});

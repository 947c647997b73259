// The invitation end to end with real parts: the e-mail sent through Debian's Postfix (SMTP AUTH
// through Dovecot) and delivered by LMTP into a mailbox, read back over IMAP; its link followed
// in Chromium; the password revealed, its hash published into the password database the way the
// operator does, and a real IMAP login to Dovecot with it.
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImapFlow } from "imapflow";
import { simpleParser } from "mailparser";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { launchChromium, type HeadlessChromium } from "../../harness/browser.ts";
import { MailServer } from "../../harness/dovecot.ts";
import { imapLogin } from "../../harness/mail-clients.ts";
import { PortalCli } from "../../harness/portal-cli.ts";
import { repoRoot } from "../install-support.ts";
import { apiVersion, createdByAnnotation, kinds } from "../../src/api/names.ts";
import type { MailDevice } from "../../src/api/schemas.ts";
import { generatePassword, hashPassword, owaspArgon2id } from "../../src/credentials/password.ts";
import { sendInvitationMail } from "../../src/invitations/mail.ts";
import {
  desiredInvitationRecord,
  hmacInvitationSealer,
  parseInvitationRecord,
  verifyInvitationSeal,
  type ConfigMapObject,
} from "../../src/invitations/record.ts";
import { invitationLink, newInvitationToken, tokenHash } from "../../src/invitations/token.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { addressKey, renderAddressFile, type PassdbEntry } from "../../src/passdb/format.ts";
import { adminKubectl, eventually, withNamespace } from "../support.ts";

const kubectl = adminKubectl();
/** Screenshots of this file (the portal's own tests write theirs beside, in .artifacts/portal/). */
const artifacts = join(repoRoot, ".artifacts", "portal-email");
const sealKey = Buffer.alloc(32, 9);
const relayUser = "invitations@example.com";
const person = "bob@people.test";

let release: { name: string; dispose: () => Promise<void> };
let tenant: { name: string; dispose: () => Promise<void> };
let admin: KubeClient;
let passdbDir: string;
let credentialsDir: string;
let mail: MailServer;
let portal: PortalCli;
let chromium: HeadlessChromium;
const passwords: Record<string, string> = {};
const entries = new Map<string, PassdbEntry[]>();

/** Writes an address's file of the password database, as the operator's shard Secrets hold it. */
async function publish(entry: PassdbEntry): Promise<void> {
  const list = [...(entries.get(entry.address) ?? []).filter((e) => e.device !== entry.device), entry];
  entries.set(entry.address, list);
  await writeFile(join(passdbDir, addressKey(entry.address)), renderAddressFile(list), { mode: 0o644 });
}

beforeAll(async () => {
  admin = await KubeClient.fromKubeconfig(inject("kubeconfig"), "devicepass-test");
  release = await withNamespace(kubectl, "invite-release");
  tenant = await withNamespace(kubectl, "invite-tenant");
  passdbDir = await mkdtemp(join(tmpdir(), "devicepass-passdb-"));
  await chmod(passdbDir, 0o755); // Dovecot's auth workers (user dovecot) read it
  credentialsDir = await mkdtemp(join(tmpdir(), "devicepass-relay-"));
  // The relay's account (SMTP AUTH) and the person's mailbox are devices like any other.
  for (const address of [relayUser, person]) {
    passwords[address] = generatePassword(24);
    await publish({
      address,
      device: "test/mailbox",
      protocols: ["imap", "smtp"],
      hash: await hashPassword(passwords[address], owaspArgon2id),
    });
  }
  await writeFile(join(credentialsDir, "username"), relayUser);
  await writeFile(join(credentialsDir, "password"), `${passwords[relayUser]}\n`);
  mail = await MailServer.start({ passdbDir, deliverDomains: ["people.test"] });
  portal = await PortalCli.start({ kubeconfig: inject("kubeconfig"), namespace: release.name });
  chromium = await launchChromium();
  await mkdir(artifacts, { recursive: true });
});

afterAll(async () => {
  await chromium?.close();
  await portal?.stop();
  await mail?.stop();
  await tenant?.dispose();
  await release?.dispose();
  await admin?.close();
  for (const dir of [passdbDir, credentialsDir]) if (dir) await rm(dir, { recursive: true, force: true });
});

describe("an invitation sent by e-mail", () => {
  it("arrives through Postfix in the person's mailbox, in Spanish, and its link gives a password that logs in", async () => {
    // Created as "Ana Admin" for real: the created-by policy records who sent the request.
    const manifest = {
      apiVersion,
      kind: kinds.mailDevice.kind,
      metadata: { name: "bob-laptop", namespace: tenant.name },
      spec: {
        address: "alice",
        displayName: "Portátil de Bob",
        icon: "laptop",
        user: { name: "Bob", email: person },
      },
    };
    await kubectl.ok(
      ["--as", "Ana Admin", "--as-group", "system:masters", "create", "-f", "-"],
      JSON.stringify(manifest),
    );
    const device = await kubectl.json<MailDevice>([
      "get",
      "-n",
      tenant.name,
      kinds.mailDevice.plural,
      "bob-laptop",
    ]);
    expect(device.metadata.annotations?.[createdByAnnotation]).toBe("Ana Admin");
    const settings = {
      imap: { host: mail.host, port: mail.ports.imap, security: "STARTTLS" as const },
      smtp: { host: mail.host, port: mail.ports.smtp, security: "STARTTLS" as const },
    };
    const token = newInvitationToken();
    const record = desiredInvitationRecord({
      namespace: release.name,
      tokenHash: tokenHash(token),
      device,
      address: "alice@example.com",
      expiresAt: new Date(Date.now() + 30 * 24 * 3600_000),
      passwordLength: 24,
      argon2: owaspArgon2id,
      clientSettings: settings,
      language: "es",
      seal: hmacInvitationSealer(sealKey),
    });
    await admin.create(configMaps(), record);
    const link = invitationLink(portal.url, token);
    const invitation = parseInvitationRecord({
      ...record,
      metadata: { ...record.metadata, resourceVersion: "1" },
    }).invitation;

    // The operator's call: through the relay with its credentials from a mounted Secret.
    const sent = await sendInvitationMail(
      {
        host: mail.host,
        port: mail.ports.smtp,
        security: "none",
        from: `devicepass <${relayUser}>`,
        credentialsDir,
      },
      person,
      invitation,
      link,
    );
    expect(sent.response).toMatch(/^250 /);

    // Read back over IMAP as the person.
    const source = await eventually(
      async () => {
        const client = new ImapFlow({
          host: mail.host,
          port: mail.ports.imap,
          secure: false,
          doSTARTTLS: false,
          auth: { user: person, pass: passwords[person]! },
          logger: false,
        });
        await client.connect();
        try {
          const lock = await client.getMailboxLock("INBOX");
          try {
            const message = await client.fetchOne("*", { source: true });
            if (!message || !message.source) throw new Error("no message yet");
            return message.source;
          } finally {
            lock.release();
          }
        } finally {
          await client.logout();
        }
      },
      30_000,
      500,
    ).catch(async (error: unknown) => {
      throw new Error(
        `${(error as Error).message}\n--- postfix\n${(await mail.postfixLog()).slice(-3000)}\n--- dovecot\n${(await mail.dovecotLog()).slice(-3000)}`,
      );
    });
    const parsed = await simpleParser(source);
    expect(parsed.subject).toBe("Configure Portátil de Bob para alice@example.com");
    expect(parsed.from?.value).toEqual([{ name: "devicepass", address: relayUser }]);
    expect(parsed.headers.get("auto-submitted")).toBe("auto-generated");
    expect(parsed.text).toContain("Ana Admin le ha invitado a configurar el dispositivo «Portátil de Bob»");
    expect(parsed.text).toContain(link);
    const html = String(parsed.html);
    const href = /<a href="([^"]+)"/.exec(html)?.[1];
    expect(href).toBe(link);
    expect(html).toContain("Configurar el dispositivo");

    // The link from the HTML part, followed in Chromium.
    const context = await chromium.browser.createBrowserContext();
    const page = await context.newPage();
    await page.setViewport({ width: 820, height: 900 });
    await page.setContent(html);
    await page.screenshot({ path: join(artifacts, "1-email-es.png"), fullPage: true });
    await Promise.all([page.waitForNavigation(), page.click("a")]);
    expect(page.url()).toBe(link);
    await page.screenshot({
      path: join(artifacts, "2-from-email-es.png"),
      fullPage: true,
    });
    const clicked = performance.now();
    await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
    const password = (await page.evaluate(`document.getElementById("password").textContent`)) as string;
    const redeemed = parseInvitationRecord(
      await admin.get<ConfigMapObject>(configMaps(record.metadata.name)),
    );
    expect(redeemed.data.state).toBe("redeemed");
    expect(verifyInvitationSeal(redeemed, sealKey)).toBe(true);

    // What the operator does next: publish the redeemed hash into the password database.
    await publish({
      address: "alice@example.com",
      device: `${tenant.name}/bob-laptop`,
      protocols: ["imap", "pop3", "smtp"],
      hash: redeemed.data.passwordHash!,
    });
    const login = await imapLogin({ host: mail.host, port: mail.ports.imap }, "alice@example.com", password);
    const ms = performance.now() - clicked;
    expect(login.ok, login.response).toBe(true);
    console.log(
      `button pressed to a working IMAP login (hash published by the test as the operator would): ${ms.toFixed(0)} ms`,
    );
    await context.close();
    // The password is nowhere but in that page: not in the record, not in the mail, not in the portal's log.
    expect(JSON.stringify(redeemed.configMap)).not.toContain(password);
    expect(source.toString("utf8")).not.toContain(password);
    expect(await portal.log()).not.toContain(password);
  });
});

function configMaps(name?: string) {
  return { group: "", version: "v1", plural: "configmaps", namespace: release.name, name };
}

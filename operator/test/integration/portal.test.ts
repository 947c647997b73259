// The portal against the real API server, as processes with nothing but the chart's Role, opened
// in Debian's headless Chromium: an invitation record made the way the operator makes it, the
// link opened, the button pressed, the password read off the page and checked against the hash
// the record now holds; every closed state, two replicas racing, and every bad request.
import { verify } from "@node-rs/argon2";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parsePlist } from "plist";
import decodeQR from "qr/decode.js";
import type { BrowserContext, Page } from "puppeteer-core";
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { launchChromium, type HeadlessChromium } from "../../harness/browser.ts";
import { PortalCli } from "../../harness/portal-cli.ts";
import { apiVersion, createdByAnnotation, invitationNames, kinds } from "../../src/api/names.ts";
import type { MailDevice } from "../../src/api/schemas.ts";
import { desiredAutoconfigConfigMap } from "../../src/autoconfig/data.ts";
import { owaspArgon2id } from "../../src/credentials/password.ts";
import {
  desiredInvitationRecord,
  hmacInvitationSealer,
  parseInvitationRecord,
  revokedRecord,
  verifyInvitationSeal,
  type ConfigMapObject,
  type InvitationRecord,
} from "../../src/invitations/record.ts";
import { invitationLink, newInvitationToken, tokenHash } from "../../src/invitations/token.ts";
import { portalAdmissionPolicy, portalRules } from "../../src/install/portal-rbac.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { canI, repoRoot, serviceAccountKubeconfig } from "../install-support.ts";
import { adminKubectl, eventually, withNamespace } from "../support.ts";

const kubectl = adminKubectl();
const artifacts = join(repoRoot, ".artifacts", "portal");
const sealKey = Buffer.alloc(32, 42);
const settings = {
  imap: { host: "imap.example.com", port: 993, security: "SSL/TLS" as const },
  pop3: { host: "pop.example.com", port: 995, security: "SSL/TLS" as const },
  smtp: { host: "smtp.example.com", port: 587, security: "STARTTLS" as const },
};
/** Small argon2 parameters keep most tests fast; the timed test uses the production ones. */
const fastArgon2 = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

let release: { name: string; dispose: () => Promise<void> };
let tenant: { name: string; dispose: () => Promise<void> };
let admin: KubeClient;
/** The portal's own credentials, to try what it must not do. */
let asPortal: KubeClient;
let portal: PortalCli;
let replica: PortalCli;
let chromium: HeadlessChromium;
let device: MailDevice;
const timings: number[] = [];

const configMaps = (namespace: string, name?: string) => ({
  group: "",
  version: "v1",
  plural: "configmaps",
  namespace,
  name,
});

interface Invitation {
  token: string;
  link: string;
  name: string;
}

/** An invitation record made the way the operator makes one, created in the release namespace. */
async function invite(
  options: {
    expiresInMs?: number;
    argon2?: typeof fastArgon2;
    language?: "en" | "es";
    protocols?: MailDevice["spec"]["protocols"];
    base?: string;
  } = {},
): Promise<Invitation> {
  const token = newInvitationToken();
  const forDevice = options.protocols
    ? { ...device, spec: { ...device.spec, protocols: options.protocols } }
    : device;
  const record = desiredInvitationRecord({
    namespace: release.name,
    tokenHash: tokenHash(token),
    device: forDevice,
    address: "alice@example.com",
    expiresAt: new Date(Date.now() + (options.expiresInMs ?? 30 * 24 * 3600_000)),
    passwordLength: 24,
    argon2: options.argon2 ?? fastArgon2,
    clientSettings: settings,
    language: options.language,
    seal: hmacInvitationSealer(sealKey),
  });
  await admin.create(configMaps(release.name), record);
  return { token, link: invitationLink(options.base ?? portal.url, token), name: record.metadata.name };
}

async function readRecord(name: string): Promise<InvitationRecord> {
  return parseInvitationRecord(await admin.get<ConfigMapObject>(configMaps(release.name, name)));
}

async function shot(page: Page, name: string): Promise<void> {
  await mkdir(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** What Chromium reported against the pages: script errors, CSP violations, failed loads. */
const browserComplaints: string[] = [];

async function newPage(context: BrowserContext, language: "en" | "es"): Promise<Page> {
  const page = await context.newPage();
  page.on("pageerror", (error) => browserComplaints.push(`page error: ${String(error)}`));
  page.on("console", (m) => {
    // Closed links answer 404 and 410 on purpose; Chromium logs each such document.
    if (/^Failed to load resource: the server responded with a status of 4(04|10)\b/.test(m.text())) return;
    if (m.type() === "error" || /Content Security Policy/i.test(m.text()))
      browserComplaints.push(`console: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.url().includes("/static/") && r.status() !== 200)
      browserComplaints.push(`asset ${r.url()}: ${r.status()}`);
  });
  page.on("requestfailed", (r) => {
    // A download (the profile) ends its navigation on purpose.
    if (!r.url().includes("/profile/")) browserComplaints.push(`request failed: ${r.failure()?.errorText}`);
  });
  await page.setViewport({ width: 820, height: 900 });
  await page.setExtraHTTPHeaders({
    "Accept-Language": language === "es" ? "es-ES,es;q=0.9" : "en-GB,en;q=0.9",
  });
  return page;
}

/** Runs `expression` in the page (a string: the tests compile without the DOM's types). */
const inPage = <T>(page: Page, expression: string) => page.evaluate(expression) as Promise<T>;
const textOf = (page: Page, selector: string) =>
  inPage<string>(page, `document.querySelector(${JSON.stringify(selector)})?.textContent ?? ""`);

const statusOf = (page: Page) =>
  inPage<string | null>(page, `document.querySelector("[data-status]")?.getAttribute("data-status") ?? null`);

/** The QR code on the page, decoded: drawn onto a canvas in a blank page, its pixels read back. */
async function readQr(context: BrowserContext, page: Page): Promise<string> {
  const svg = await inPage<string>(page, `document.querySelector("svg.qr").outerHTML`);
  const blank = await context.newPage();
  // Runs in the browser (a string: the tests compile without the DOM's types).
  const image = (await blank.evaluate(`(async () => {
    const img = new Image();
    img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(${JSON.stringify(svg)}.replace("<svg ", '<svg width="400" height="400" '));
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = 400;
    canvas.height = 400;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, 400, 400);
    ctx.drawImage(img, 0, 0, 400, 400);
    return Array.from(ctx.getImageData(0, 0, 400, 400).data);
  })()`)) as number[];
  await blank.close();
  return decodeQR({ width: 400, height: 400, data: new Uint8Array(image) });
}

/**
 * A plain HTTP client from its own loopback source address (the rate limiter keys on it), on
 * node:http, whose requests take a localAddress.
 */
function clientFrom(localAddress: string) {
  const agent = new HttpAgent({ keepAlive: false });
  const send = (
    url: string,
    options: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ) =>
    new Promise<{
      statusCode: number;
      headers: IncomingHttpHeaders;
      body: { text(): Promise<string>; dump(): Promise<void> };
    }>((resolve, reject) => {
      const req = httpRequest(
        url,
        { method: options.method ?? "GET", headers: options.headers, localAddress, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          const done = new Promise<string>((ok) =>
            res.on("end", () => ok(Buffer.concat(chunks).toString("utf8"))),
          );
          resolve({
            statusCode: res.statusCode ?? 0,
            headers: res.headers,
            body: { text: () => done, dump: async () => void (await done) },
          });
        },
      );
      req.on("error", reject);
      req.end(options.body);
    });
  return { request: send, close: () => Promise.resolve(agent.destroy()) };
}

type Client = ReturnType<typeof clientFrom>;

/** GET the invitation page like a browser: its CSRF cookie and hidden field. */
async function openForm(client: Client, link: string): Promise<{ cookie: string; csrf: string }> {
  const res = await client.request(link);
  const html = await res.body.text();
  expect(res.statusCode).toBe(200);
  const setCookie = String(res.headers["set-cookie"]);
  return { cookie: setCookie.split(";")[0]!, csrf: /name="csrf" value="([^"]+)"/.exec(html)![1]! };
}

async function post(
  client: Client,
  link: string,
  form: { cookie?: string; csrf?: string },
  /** Headers to add or, undefined, to leave out. */
  extra: Record<string, string | undefined> = {},
  body?: string,
) {
  const headers: Record<string, string | undefined> = {
    "content-type": "application/x-www-form-urlencoded",
    origin: new URL(link).origin,
    "sec-fetch-site": "same-origin",
    ...(form.cookie ? { cookie: form.cookie } : {}),
    ...extra,
  };
  const res = await client.request(link, {
    method: "POST",
    headers: Object.fromEntries(
      Object.entries(headers).filter((e): e is [string, string] => e[1] !== undefined),
    ),
    body: body ?? new URLSearchParams(form.csrf ? { csrf: form.csrf } : {}).toString(),
  });
  return { status: res.statusCode, headers: res.headers, html: await res.body.text() };
}

const dataStatus = (html: string) => /data-status="([a-zA-Z]+)"/.exec(html)?.[1];
const passwordIn = (html: string) =>
  /<output id="password" class="password">([^<]+)<\/output>/.exec(html)?.[1];

beforeAll(async () => {
  admin = await KubeClient.fromKubeconfig(inject("kubeconfig"), "devicepass-test");
  release = await withNamespace(kubectl, "portal-release");
  tenant = await withNamespace(kubectl, "portal-tenant");
  // Created by "Bob Admin", as the cluster's created-by admission policy records it: who invited.
  await kubectl.ok(
    ["apply", "-n", tenant.name, "--as", "Bob Admin", "--as-group", "system:masters", "-f", "-"],
    JSON.stringify({
      apiVersion,
      kind: kinds.mailDevice.kind,
      metadata: { name: "alice-iphone" },
      spec: { address: "alice", displayName: "Alice's iPhone", icon: "phone" },
    }),
  );
  device = await kubectl.json<MailDevice>(["get", "maildevice", "alice-iphone", "-n", tenant.name]);
  expect(device.metadata.annotations?.[createdByAnnotation]).toBe("Bob Admin");
  // The portal runs as a ServiceAccount with exactly the chart's Role: nothing else.
  await kubectl.ok(["create", "serviceaccount", "portal", "-n", release.name]);
  const role = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: "portal", namespace: release.name },
    rules: portalRules(invitationNames.autoconfigConfigMap),
  };
  const binding = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: "portal", namespace: release.name },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "portal" },
    subjects: [{ kind: "ServiceAccount", name: "portal", namespace: release.name }],
  };
  // And under the chart's admission policy, which narrows its updates to redemption.
  const policy = portalAdmissionPolicy({
    name: `portal-${release.name}`,
    namespace: release.name,
    serviceAccount: "portal",
  });
  const dir = await mkdtemp(join(tmpdir(), "devicepass-portal-rbac-"));
  await writeFile(
    join(dir, "rbac.json"),
    JSON.stringify({ apiVersion: "v1", kind: "List", items: [role, binding, ...policy] }),
  );
  await kubectl.ok(["apply", "-f", join(dir, "rbac.json")]);
  await admin.create(
    configMaps(release.name),
    desiredAutoconfigConfigMap(release.name, [{ name: "example.com", clientSettings: settings }], {}),
  );
  const kubeconfig = await serviceAccountKubeconfig(kubectl, release.name, "portal");
  asPortal = await KubeClient.fromKubeconfig(kubeconfig, "devicepass-test-as-portal");
  [portal, replica] = await Promise.all([
    PortalCli.start({ kubeconfig, namespace: release.name }),
    PortalCli.start({ kubeconfig, namespace: release.name }),
  ]);
  chromium = await launchChromium();
});

afterAll(async () => {
  await chromium?.close();
  // The server's own measure of a redemption: POST received to the record's update answered.
  const redeemMs = (await Promise.all([portal, replica].map((p) => p?.log() ?? "")))
    .join("\n")
    .split("\n")
    .filter((l) => l.includes('"redeemed an invitation"'))
    .map((l) => (JSON.parse(l) as { redeemMs: number }).redeemMs);
  console.log(`portal: POST received to record redeemed (ms): ${redeemMs.join(", ")}`);
  await portal?.stop();
  await replica?.stop();
  await tenant?.dispose();
  await release?.dispose();
  await admin?.close();
  await asPortal?.close();
  await kubectl.run([
    "delete",
    "validatingadmissionpolicy,validatingadmissionpolicybinding",
    `portal-${release?.name}`,
  ]);
  if (timings.length > 0)
    console.log(`POST to redeemed record (ms): ${timings.map((t) => t.toFixed(0)).join(", ")}`);
});

describe("an invitation link in Chromium", () => {
  for (const language of ["en", "es"] as const) {
    it(`shows the invitation, reveals the password once, and says used after (${language})`, async () => {
      const invitation = await invite({ argon2: owaspArgon2id });
      const context = await chromium.browser.createBrowserContext();
      const page = await newPage(context, language);
      // GET consumes nothing: opened twice, still pending.
      for (let i = 0; i < 2; i++) {
        const res = await page.goto(invitation.link);
        expect(res?.status()).toBe(200);
      }
      expect((await readRecord(invitation.name)).data.state).toBe("pending");
      const text = await inPage<string>(page, `document.querySelector("main").innerText`);
      expect(text).toContain("Alice's iPhone");
      expect(text).toContain("alice@example.com");
      expect(text).toContain("Bob Admin");
      expect(text).toContain(language === "es" ? "Enlace válido hasta" : "Link valid until");
      expect(
        await inPage<string[]>(page, `[document.forms[0].method, document.forms[0].getAttribute("action")]`),
      ).toEqual(["post", `/i/${invitation.token}`]);
      expect(await inPage<number>(page, "document.forms.length")).toBe(1);
      await shot(page, `1-invitation-${language}`);

      const started = performance.now();
      const [response] = await Promise.all([
        page.waitForNavigation(),
        page.click("form button[type=submit]"),
      ]);
      const record = await readRecord(invitation.name);
      timings.push(performance.now() - started);
      expect(response?.status()).toBe(200);
      const password = await textOf(page, "#password");
      expect(password).toMatch(/^[A-Za-z0-9]{24}$/);
      // The record holds its hash, and only that: the password verifies against it.
      expect(record.data.state).toBe("redeemed");
      expect(record.data.passwordHash).toMatch(/^\{ARGON2ID\}\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      expect(await verify(record.data.passwordHash!.slice("{ARGON2ID}".length), password)).toBe(true);
      expect(JSON.stringify(record.configMap)).not.toContain(password);
      expect(verifyInvitationSeal(record, sealKey)).toBe(true);
      const rows = await inPage<string[]>(
        page,
        `[...document.querySelectorAll("table.settings tbody tr")].map((t) => t.dataset.protocol + " " + t.innerText)`,
      );
      expect(rows.map((r) => r.replace(/\s+/g, " "))).toEqual([
        `imap ${language === "es" ? "Correo entrante" : "Incoming mail"} (IMAP) imap.example.com 993 SSL/TLS`,
        `pop3 ${language === "es" ? "Correo entrante" : "Incoming mail"} (POP3) pop.example.com 995 SSL/TLS`,
        `smtp ${language === "es" ? "Correo saliente" : "Outgoing mail"} (SMTP) smtp.example.com 587 STARTTLS`,
      ]);
      expect(await textOf(page, "dd.username")).toBe("alice@example.com");
      await shot(page, `2-password-${language}`);
      // The copy button is the script's: visible with JavaScript, and it copies the password.
      expect(await inPage<boolean>(page, `document.querySelector("button.copy").hidden`)).toBe(false);
      await context.overridePermissions(portal.url, [
        "clipboard-read",
        "clipboard-write",
        "clipboard-sanitized-write",
      ]);
      await page.click("button.copy");
      expect(await page.evaluate("navigator.clipboard.readText()")).toBe(password);

      // Reload: the POST again (Chromium resubmits) and a fresh GET both say used.
      const again = await page.reload();
      expect(again?.status()).toBe(410);
      expect(await statusOf(page)).toBe("used");
      await page.goto(invitation.link);
      expect(await statusOf(page)).toBe("used");
      expect(await page.$("form")).toBeNull();
      expect(await inPage<string>(page, `document.querySelector("main").innerText`)).not.toContain(password);
      await shot(page, `3-used-${language}`);
      await context.close();
    });
  }

  it("works without JavaScript: a plain form POST, no copy button", async () => {
    const invitation = await invite();
    const context = await chromium.browser.createBrowserContext();
    const page = await newPage(context, "en");
    await page.setJavaScriptEnabled(false);
    await page.goto(invitation.link);
    await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
    const password = await textOf(page, "#password");
    const record = await readRecord(invitation.name);
    expect(await verify(record.data.passwordHash!.slice("{ARGON2ID}".length), password)).toBe(true);
    expect(await inPage<boolean>(page, `document.querySelector("button.copy").hidden`)).toBe(true);
    await shot(page, "2-password-no-javascript");
    await context.close();
  });

  it("gives the phone the setup page by its QR code, and the profile for a few minutes", async () => {
    const invitation = await invite();
    const context = await chromium.browser.createBrowserContext();
    const page = await newPage(context, "en");
    await page.goto(invitation.link);
    await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
    const password = await textOf(page, "#password");
    const phoneUrl = await readQr(context, page);
    expect(phoneUrl).toMatch(new RegExp(`^${portal.url}/i/${invitation.token}/setup/[A-Za-z0-9_-]{43}$`));
    // The key is in the page only: the record holds ciphertext that does not contain the password.
    const record = await readRecord(invitation.name);
    expect(record.data.setupCiphertext).toMatch(/^v1\./);
    expect(JSON.stringify(record.configMap)).not.toContain(phoneUrl.split("/").at(-1));

    // The phone, on another replica: the same password, the profile link.
    const phone = await newPage(context, "es");
    await phone.goto(phoneUrl.replace(portal.url, replica.url));
    expect(await textOf(phone, "#password")).toBe(password);
    await shot(phone, "4-phone-setup-es");

    // The .mobileconfig, downloaded from the page that showed the password.
    const downloads = await mkdtemp(join(tmpdir(), "devicepass-downloads-"));
    const cdp = await page.createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", {
      behavior: "allow",
      downloadPath: downloads,
      browserContextId: context.id,
    });
    // A link click that becomes a download never settles puppeteer's click(): click in the page.
    await inPage(page, `document.getElementById("profile").click()`);
    const file = await eventually(async () => {
      const names = (await readdir(downloads)).filter((n) => n.endsWith(".mobileconfig"));
      expect(names).toEqual(["alice@example.com.mobileconfig"]);
      return join(downloads, names[0]!);
    }, 10_000);
    const profile = parsePlist(await readFile(file, "utf8")) as {
      PayloadType: string;
      PayloadContent: Record<string, unknown>[];
    };
    expect(profile.PayloadType).toBe("Configuration");
    expect(profile.PayloadContent[0]).toMatchObject({
      PayloadType: "com.apple.mail.managed",
      EmailAddress: "alice@example.com",
      IncomingMailServerHostName: "imap.example.com",
      IncomingPassword: password,
      OutgoingMailServerHostName: "smtp.example.com",
    });
    await rm(downloads, { recursive: true, force: true });

    // A wrong key gives nothing.
    const wrong = phoneUrl.replace(/.$/, (c) => (c === "A" ? "Q" : "A"));
    await phone.goto(wrong);
    expect(await statusOf(phone)).toBe("setupExpired");
    await context.close();
  });

  it("shows expired, revoked and unknown links, each for what it is, and nothing else", async () => {
    const context = await chromium.browser.createBrowserContext();
    const revoked = await invite();
    await admin.replace(
      configMaps(release.name, revoked.name),
      revokedRecord(await readRecord(revoked.name)),
    );
    const unknown = invitationLink(portal.url, newInvitationToken());
    for (const language of ["en", "es"] as const) {
      const page = await newPage(context, language);
      await page.goto(revoked.link);
      expect(await statusOf(page)).toBe("revoked");
      await shot(page, `5-revoked-${language}`);
      await page.goto(unknown);
      expect(await statusOf(page)).toBe("unknown");
      await shot(page, `6-unknown-${language}`);
    }
    const page = await newPage(context, "en");
    const expiring = await invite({ expiresInMs: 3_000 });
    await page.goto(expiring.link);
    expect(await page.$("form")).not.toBeNull();
    const expiresAt = Date.parse((await readRecord(expiring.name)).invitation.expiresAt);
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now() + 100)));
    // The button pressed after expiry: expired, and the record stays pending and unredeemed.
    await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
    expect(await statusOf(page)).toBe("expired");
    expect((await readRecord(expiring.name)).data.state).toBe("pending");
    for (const language of ["en", "es"] as const) {
      const p = await newPage(context, language);
      const res = await p.goto(expiring.link);
      expect(res?.status()).toBe(410);
      expect(await statusOf(p)).toBe("expired");
      await shot(p, `7-expired-${language}`);
    }
    await context.close();
  });
});

describe("the pages in Chromium, all together", () => {
  it("raised no script error, CSP violation or failed request", () => {
    expect(browserComplaints).toEqual([]);
  });
});

describe("the portal over plain HTTP", () => {
  it("lets exactly one of two replicas redeem a link, however many requests race", async () => {
    const invitation = await invite();
    const clients = Array.from({ length: 8 }, (_, i) => clientFrom(`127.0.9.${i + 1}`));
    const forms = await Promise.all(clients.map((c) => openForm(c, invitation.link)));
    const results = await Promise.all(
      clients.map((c, i) =>
        post(c, invitationLink(i % 2 === 0 ? portal.url : replica.url, invitation.token), forms[i]!),
      ),
    );
    const winners = results.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => r.status === 410).map((r) => dataStatus(r.html))).toEqual(
      Array<string>(7).fill("used"),
    );
    const record = await readRecord(invitation.name);
    expect(
      await verify(record.data.passwordHash!.slice("{ARGON2ID}".length), passwordIn(winners[0]!.html)!),
    ).toBe(true);
    await Promise.all(clients.map((c) => c.close()));
  });

  it("refuses every bad request and uses nothing up", async () => {
    const client = clientFrom("127.0.10.1");
    const invitation = await invite();
    const form = await openForm(client, invitation.link);
    // Tampered token: one character changed.
    const tampered = invitation.link.replace(/.$/, (c) => (c === "A" ? "Q" : "A"));
    expect(dataStatus((await post(client, tampered, form)).html)).toBe("unknown");
    // No CSRF value, a wrong one, no cookie, another site's Origin, a cross-site fetch, not a form.
    const refusals = [
      await post(client, invitation.link, { cookie: form.cookie }),
      await post(client, invitation.link, { cookie: form.cookie, csrf: "A".repeat(43) }),
      await post(client, invitation.link, { csrf: form.csrf }),
      await post(client, invitation.link, form, { origin: "https://evil.example" }),
      await post(client, invitation.link, form, { "sec-fetch-site": "cross-site" }),
      // Origin: null (what no-referrer gives) is taken only with Sec-Fetch-Site: same-origin.
      await post(client, invitation.link, form, { origin: "null", "sec-fetch-site": undefined }),
      await post(client, invitation.link, form, { "content-type": "text/plain" }),
    ];
    for (const r of refusals) expect([r.status, dataStatus(r.html)]).toEqual([403, "formExpired"]);
    // An oversized body.
    const big = await post(client, invitation.link, form, {}, `csrf=${form.csrf}&pad=${"x".repeat(20_000)}`);
    expect([big.status, dataStatus(big.html)]).toEqual([413, "tooLarge"]);
    // Wrong methods.
    for (const method of ["PUT", "DELETE", "PATCH"] as const) {
      const res = await client.request(invitation.link, { method });
      expect(res.statusCode).toBe(405);
      expect(res.headers.allow).toBe("GET, HEAD, POST");
      await res.body.dump();
    }
    const get = await client.request(`${portal.url}/autodiscover/autodiscover.xml`);
    expect([get.statusCode, get.headers.allow]).toEqual([405, "POST"]);
    await get.body.dump();
    expect((await readRecord(invitation.name)).data.state).toBe("pending");
    // The real POST works; replaying it afterwards gives "used" and no password.
    const ok = await post(client, invitation.link, form);
    expect(ok.status).toBe(200);
    const replay = await post(client, invitation.link, form);
    expect([replay.status, dataStatus(replay.html), passwordIn(replay.html)]).toEqual([
      410,
      "used",
      undefined,
    ]);
    await client.close();
  });

  it("rate-limits wrong links per client, and not other clients", async () => {
    const attacker = clientFrom("127.0.11.1");
    const other = clientFrom("127.0.11.2");
    const invitation = await invite();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await attacker.request(invitationLink(portal.url, newInvitationToken()));
      statuses.push(res.statusCode);
      await res.body.dump();
    }
    expect(statuses).toEqual([...Array<number>(10).fill(404), 429, 429]);
    const limited = await attacker.request(invitation.link);
    expect([limited.statusCode, Number(limited.headers["retry-after"]) > 0]).toEqual([429, true]);
    expect(dataStatus(await limited.body.text())).toBe("rateLimited");
    const fine = await other.request(invitation.link);
    expect(fine.statusCode).toBe(200);
    await fine.body.dump();
    await Promise.all([attacker.close(), other.close()]);
  });

  it("sends the strict headers on every response", async () => {
    const client = clientFrom("127.0.12.1");
    const invitation = await invite();
    const responses = [
      await client.request(invitation.link),
      await client.request(invitationLink(portal.url, newInvitationToken())),
      await client.request(`${portal.url}/static/portal.css`),
      await client.request(`${portal.url}/static/portal.js`),
      await client.request(`${portal.url}/mail/config-v1.1.xml?emailaddress=alice@example.com`),
      await client.request(`${portal.url}/nothing-here`),
      await client.request(`${portal.url}/healthz`),
      await client.request(invitation.link, { method: "DELETE" }),
      await client.request(invitation.link, { method: "POST", body: "x".repeat(20_000) }),
    ];
    for (const res of responses) {
      expect(res.headers).toMatchObject({
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "content-security-policy":
          "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      });
      await res.body.dump();
    }
    await client.close();
  });

  it("answers autoconfiguration for known domains alike for every address, and follows the ConfigMap", async () => {
    const client = clientFrom("127.0.13.1");
    const get = async (path: string) => {
      const res = await client.request(`${portal.url}${path}`);
      return { status: res.statusCode, type: res.headers["content-type"], body: await res.body.text() };
    };
    const known = await get("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.com");
    const unknownAddress = await get("/mail/config-v1.1.xml?emailaddress=nobody%40example.com");
    expect(known.status).toBe(200);
    expect(known.type).toBe("application/xml; charset=utf-8");
    expect(unknownAddress.body).toBe(known.body);
    const schemaDir = join(repoRoot, "operator", "src", "autoconfig", "schemas");
    const dir = await mkdtemp(join(tmpdir(), "devicepass-autoconfig-"));
    await writeFile(join(dir, "config.xml"), known.body);
    execFileSync(
      "xmllint",
      ["--noout", "--schema", join(schemaDir, "config-v1.1.xsd"), join(dir, "config.xml")],
      { stdio: "pipe" },
    );
    expect((await get("/mail/config-v1.1.xml?emailaddress=alice%40unknown.test")).status).toBe(404);

    const pox = (address: string) =>
      client
        .request(`${portal.url}/autodiscover/autodiscover.xml`, {
          method: "POST",
          headers: { "content-type": "text/xml" },
          body: `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>${address}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`,
        })
        .then(async (r) => ({ status: r.statusCode, body: await r.body.text() }));
    const outlook = await pox("alice@example.com");
    expect(outlook.status).toBe(200);
    await writeFile(join(dir, "pox.xml"), outlook.body);
    execFileSync(
      "xmllint",
      ["--noout", "--schema", join(schemaDir, "autodiscover-response.xsd"), join(dir, "pox.xml")],
      { stdio: "pipe" },
    );
    expect((await pox("nobody@example.com")).body).toBe(
      outlook.body.replaceAll("alice@example.com", "nobody@example.com"),
    );

    // The operator republishes: the portal follows its watch.
    await admin.replace(
      configMaps(release.name, invitationNames.autoconfigConfigMap),
      desiredAutoconfigConfigMap(
        release.name,
        [{ name: "example.org", clientSettings: { smtp: settings.smtp } }],
        {},
      ),
    );
    await eventually(async () => {
      expect((await get("/mail/config-v1.1.xml?emailaddress=a%40example.org")).status).toBe(200);
      expect((await get("/mail/config-v1.1.xml?emailaddress=a%40example.com")).status).toBe(404);
    }, 10_000);
    await client.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("runs with nothing but get and update of ConfigMaps in its namespace", async () => {
    const as = `system:serviceaccount:${release.name}:portal`;
    const n = ["-n", release.name];
    expect(await canI(kubectl, as, ["get", "configmaps", ...n])).toBe(true);
    expect(await canI(kubectl, as, ["update", "configmaps", ...n])).toBe(true);
    for (const args of [
      ["list", "configmaps", ...n],
      ["create", "configmaps", ...n],
      ["delete", "configmaps", ...n],
      ["get", "secrets", ...n],
      ["get", "configmaps", "-n", tenant.name],
      ["get", "maildevices", "-n", tenant.name],
      ["list", "namespaces"],
    ])
      expect(await canI(kubectl, as, args), args.join(" ")).toBe(false);
    // Nothing of a password in its logs.
    expect(await portal.log()).not.toMatch(/"password":"[A-Za-z0-9]{24}"/);
    expect(await portal.log()).not.toContain("/i/");
  });

  it("cannot, with its own credentials, write anything but a redemption (the admission policy)", async () => {
    const invitation = await invite();
    const record = await readRecord(invitation.name);
    const refused = async (object: ConfigMapObject) => {
      const error = await asPortal.replace(configMaps(release.name, object.metadata.name), object).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.message).toMatch(/ValidatingAdmissionPolicy|denied/);
    };
    const data = record.configMap.data!;
    const edit = (change: Record<string, string | undefined>) => {
      const next: Record<string, string> = { ...data };
      for (const [k, v] of Object.entries(change))
        if (v === undefined) delete next[k];
        else next[k] = v;
      return { ...record.configMap, data: next };
    };
    const hash =
      "{ARGON2ID}$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";
    await refused(edit({ invitation: data.invitation!.replace("alice@example.com", "mallory@example.com") }));
    await refused(edit({ seal: "hmac-sha256:00" }));
    await refused(edit({ state: "revoked" }));
    await refused(edit({ extra: "x" }));
    await refused({
      ...record.configMap,
      metadata: { ...record.configMap.metadata, labels: { ...record.configMap.metadata.labels, x: "y" } },
    });
    // Any other ConfigMap of the namespace (the Dovecot configuration may live here) is out of reach.
    const other = await admin.create<ConfigMapObject>(configMaps(release.name), {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "dovecot-config" },
      data: { "devicepass-passdb.lua": "-- the passdb" },
    });
    await refused({ ...other, data: { "devicepass-passdb.lua": "return PASSDB_RESULT_OK" } });
    // The redemption itself passes, once; un-redeeming does not.
    const redeemed = await asPortal.replace<ConfigMapObject>(
      configMaps(release.name, invitation.name),
      edit({ state: "redeemed", passwordHash: hash, redeemedAt: new Date().toISOString() }),
    );
    await refused({ ...redeemed, data: { ...redeemed.data, state: "pending" } });
    await refused({
      ...redeemed,
      data: { ...redeemed.data, passwordHash: hash.replace("m=1024", "m=2048") },
    });
  });
});

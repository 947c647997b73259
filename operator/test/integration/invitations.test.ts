// Delivery Invitation against the real API server: the operator in-process, the portal as its own
// process, kubectl as the administrator. What reaches the password database is read from the
// shard Secrets; links are opened and redeemed over HTTP like a browser does.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PortalCli } from "../../harness/portal-cli.ts";
import { invitationNames } from "../../src/api/names.ts";
import { parseInvitationRecord, type ConfigMapObject } from "../../src/invitations/record.ts";
import { invitationRecordName } from "../../src/invitations/token.ts";
import { invitationUrl, openLink, recordOf, redeemLink, tokenOf } from "../invitation-support.ts";
import {
  accepts,
  passdbEntries,
  readyCondition,
  startOperator,
  type RunningOperator,
} from "../operator-support.ts";
import { adminKubectl, eventually, withNamespace } from "../support.ts";

const kubectl = adminKubectl();
let tenant: { name: string; dispose: () => Promise<void> };
let db: { name: string; dispose: () => Promise<void> };
let portal: PortalCli;
let running: RunningOperator;

interface DeviceJson {
  metadata: { uid: string };
  status?: {
    secretName?: string;
    passwordGeneratedAt?: string;
    rotationCount?: number;
    invitation?: { state: string; expiresAt?: string; sentAt?: string; redeemedAt?: string };
  };
}

const device = (name: string, extra = "") => `apiVersion: mail.devicepass.io/v1alpha1
kind: MailDevice
metadata:
  name: ${name}
spec:
  address: alice
  displayName: Bob's laptop
  icon: laptop
  delivery: Invitation
${extra}`;

const getDevice = (name: string) => kubectl.json<DeviceJson>(["get", "maildevice", name, "-n", tenant.name]);

async function entriesOf(name: string) {
  return (await passdbEntries(kubectl, db.name)).filter((e) => e.device === `${tenant.name}/${name}`);
}

async function waitForLink(name: string, previous?: string): Promise<string> {
  return eventually(async () => {
    const link = await invitationUrl(kubectl, tenant.name, name);
    if (link === previous) throw new Error("still the old link");
    return link;
  });
}

beforeAll(async () => {
  tenant = await withNamespace(kubectl, "invite");
  db = await withNamespace(kubectl, "invite-db");
  portal = await PortalCli.start({ kubeconfig: inject("kubeconfig"), namespace: db.name });
  running = await startOperator({
    namespaces: [tenant.name],
    passdbNamespace: db.name,
    portalUrl: portal.url,
    defaultClientSettings: { imap: { host: "imap.example.com", port: 993, security: "SSL/TLS" } },
  });
  await kubectl.ok(
    ["apply", "-n", tenant.name, "-f", "-"],
    "apiVersion: mail.devicepass.io/v1alpha1\nkind: MailAddress\nmetadata: {name: alice}\nspec: {address: alice@example.com}\n",
  );
});

afterAll(async () => {
  await running?.stop();
  await portal?.stop();
  await tenant?.dispose();
  await db?.dispose();
});

describe("a MailDevice with delivery: Invitation", () => {
  it("gets a link in <device>-invitation and no credential Secret; the link redeems once into the database", async () => {
    await kubectl.ok(["apply", "-n", tenant.name, "-f", "-"], device("bob-laptop"));
    const link = await waitForLink("bob-laptop");
    expect(link).toMatch(new RegExp(`^${portal.url}/i/[A-Za-z0-9_-]{43}$`));
    const secret = await kubectl.json<{
      type: string;
      metadata: { labels: Record<string, string>; ownerReferences: { kind: string; name: string }[] };
      data: Record<string, string>;
    }>(["get", "secret", "bob-laptop-invitation", "-n", tenant.name]);
    expect(Object.keys(secret.data)).toEqual(["url"]);
    expect(secret.metadata.labels).toMatchObject({
      "app.kubernetes.io/managed-by": "devicepass",
      "app.kubernetes.io/component": "invitation-link",
      "mail.devicepass.io/device": "bob-laptop",
    });
    expect(secret.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: "MailDevice", name: "bob-laptop" }),
    ]);
    expect(
      (await kubectl.run(["get", "secret", "bob-laptop-mail-credentials", "-n", tenant.name])).code,
    ).not.toBe(0);
    // The record, in the operator's namespace, named after the token's hash: pending, for this device.
    const record = await recordOf(kubectl, db.name, link);
    const uid = (await getDevice("bob-laptop")).metadata.uid;
    expect(record.data.state).toBe("pending");
    expect(record.invitation).toMatchObject({
      device: { namespace: tenant.name, name: "bob-laptop", uid },
      address: "alice@example.com",
      clientSettings: { imap: { host: "imap.example.com", port: 993, security: "SSL/TLS" } },
    });
    expect(JSON.stringify(record.configMap)).not.toContain(tokenOf(link));
    await eventually(async () => {
      const status = (await getDevice("bob-laptop")).status;
      expect(status?.invitation?.state).toBe("Pending");
      expect(status?.secretName).toBeUndefined();
      expect((await readyCondition(kubectl, "maildevice", tenant.name, "bob-laptop"))?.reason).toBe(
        "InvitationPending",
      );
    });
    expect(await entriesOf("bob-laptop")).toEqual([]);

    const redeemed = await redeemLink(link);
    expect(redeemed.password).toMatch(/^[A-Za-z0-9]{24}$/);
    await eventually(async () => {
      const entries = await passdbEntries(kubectl, db.name);
      expect(await accepts(entries, `${tenant.name}/bob-laptop`, redeemed.password!)).toBe(true);
    });
    await kubectl.ok([
      "wait",
      "-n",
      tenant.name,
      "--for=condition=Ready",
      "--timeout=30s",
      "maildevice/bob-laptop",
    ]);
    const status = (await getDevice("bob-laptop")).status!;
    expect(status.invitation?.state).toBe("Redeemed");
    expect(status.passwordGeneratedAt).toBe(status.invitation?.redeemedAt);
    // A second use gives nothing.
    expect(await redeemLink(link)).toEqual({ status: 410, page: "used" });
    const wide = await kubectl.ok(["get", "maildevice", "bob-laptop", "-n", tenant.name, "-o", "wide"]);
    expect(wide.split("\n")[0]).toMatch(/\bINVITATION\b/);
    expect(wide.split("\n")[1]).toMatch(/\bRedeemed\b/);
  });

  it("rotates: the redeemed password stops working, the old link says withdrawn, a new link works", async () => {
    const before = await invitationUrl(kubectl, tenant.name, "bob-laptop");
    const [entry] = await entriesOf("bob-laptop");
    expect(entry).toBeDefined();
    await kubectl.ok([
      "annotate", "-n", tenant.name, "maildevice", "bob-laptop", "mail.devicepass.io/rotate=r1", "--overwrite",
    ]); // prettier-ignore
    const after = await waitForLink("bob-laptop", before);
    await eventually(async () => expect(await entriesOf("bob-laptop")).toEqual([]));
    expect((await recordOf(kubectl, db.name, before)).data.state).toBe("revoked");
    expect(await openLink(before)).toEqual({ status: 410, page: "revoked" });
    const status = (await getDevice("bob-laptop")).status!;
    expect(status.rotationCount).toBe(1);
    const { password } = await redeemLink(after);
    await eventually(async () =>
      expect(
        await accepts(await passdbEntries(kubectl, db.name), `${tenant.name}/bob-laptop`, password!),
      ).toBe(true),
    );
    // Acted on once: nothing more happens for the same value.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await invitationUrl(kubectl, tenant.name, "bob-laptop")).toBe(after);
  });

  it("expires without anyone looking: status Expired, the record revoked, the link says expired", async () => {
    await kubectl.ok(
      ["apply", "-n", tenant.name, "-f", "-"],
      device("short", "  invitation: { validFor: 4s }\n"),
    );
    const link = await waitForLink("short");
    expect((await openLink(link)).status).toBe(200);
    await eventually(async () => {
      expect((await getDevice("short")).status?.invitation?.state).toBe("Expired");
      expect((await recordOf(kubectl, db.name, link)).data.state).toBe("revoked");
    }, 20_000);
    expect(await openLink(link)).toEqual({ status: 410, page: "expired" });
    expect((await readyCondition(kubectl, "maildevice", tenant.name, "short"))?.reason).toBe(
      "InvitationExpired",
    );
    expect(await redeemLink(link)).toEqual({ status: 410, page: "expired" });
    // A rotation gives a new one.
    await kubectl.ok([
      "annotate",
      "-n",
      tenant.name,
      "maildevice",
      "short",
      "mail.devicepass.io/rotate=again",
    ]);
    const renewed = await waitForLink("short", link);
    expect((await openLink(renewed)).status).toBe(200);
  });

  it("replaces an invitation whose link was edited by hand, and withdraws it on deletion", async () => {
    await kubectl.ok(["apply", "-n", tenant.name, "-f", "-"], device("edited"));
    const link = await waitForLink("edited");
    const forged = `${portal.url}/i/${"A".repeat(43)}`;
    await kubectl.ok([
      "patch", "secret", "edited-invitation", "-n", tenant.name, "--type=merge",
      "-p", JSON.stringify({ stringData: { url: forged } }),
    ]); // prettier-ignore
    const replaced = await waitForLink("edited", forged);
    expect(replaced).not.toBe(link);
    expect(tokenOf(replaced)).not.toBe("A".repeat(43));
    expect((await recordOf(kubectl, db.name, link)).data.state).toBe("revoked");
    const events = await kubectl.ok([
      "get",
      "events",
      "-n",
      tenant.name,
      "--field-selector",
      "involvedObject.name=edited",
    ]);
    expect(events).toContain("InvitationReplaced");

    const { password } = await redeemLink(replaced);
    await eventually(async () =>
      expect(await accepts(await passdbEntries(kubectl, db.name), `${tenant.name}/edited`, password!)).toBe(
        true,
      ),
    );
    await kubectl.ok(["delete", "maildevice", "edited", "-n", tenant.name, "--timeout=30s"]);
    expect(await entriesOf("edited")).toEqual([]);
    expect((await kubectl.run(["get", "secret", "edited-invitation", "-n", tenant.name])).code).not.toBe(0);
    expect((await recordOf(kubectl, db.name, replaced)).data.state).toBe("revoked");
    expect(await openLink(replaced)).toEqual({ status: 410, page: "revoked" });
  });

  it("publishes nothing a portal writes into a record that is not the device's current invitation", async () => {
    await kubectl.ok(["apply", "-n", tenant.name, "-f", "-"], device("current"));
    const link = await waitForLink("current");
    const name = invitationRecordName(tokenOf(link));
    // A forged redemption: the right shape, but the seal the operator wrote no longer matches.
    const live = await kubectl.json<ConfigMapObject>(["get", "configmap", name, "-n", db.name]);
    const record = parseInvitationRecord(live);
    const hash = `{ARGON2ID}$argon2id$v=19$m=1024,t=1,p=1$${"c2FsdHNhbHRzYWx0c2FsdA"}$${"a".repeat(43)}`;
    const forgedInvitation = record.data.invitation.replace("alice@example.com", "alice@example.com ");
    await kubectl.ok(["replace", "-f", "-"], JSON.stringify({
      ...live,
      data: { ...live.data, invitation: forgedInvitation, state: "redeemed", passwordHash: hash, redeemedAt: new Date().toISOString() },
    })); // prettier-ignore
    // The operator replaces it (its seal does not verify) and never publishes the forged hash.
    const replaced = await waitForLink("current", link);
    expect(replaced).not.toBe(link);
    expect(await entriesOf("current")).toEqual([]);
  });

  it("refuses at admission what cannot work", async () => {
    const refused = async (yaml: string, message: RegExp) => {
      const result = await kubectl.run(["apply", "-n", tenant.name, "-f", "-"], yaml);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(message);
    };
    await refused(device("too-long", "  invitation: { validFor: 2161h }\n"), /at most 2160h/);
    await refused(device("zero", "  invitation: { validFor: 0s }\n"), /at most 2160h/);
    await refused(
      device("two", "  invitation: { email: 'a@example.com, b@example.com' }\n"),
      /one mail address/,
    );
    await refused(device("named", "  secretName: mine\n"), /never writes/);
    await refused(
      device("bob-laptop").replace("delivery: Invitation", "delivery: Secret"),
      /delivery is immutable/,
    );
    await refused(
      device("plain").replace("delivery: Invitation", "invitation: { validFor: 1h }"),
      /applies only with delivery: Invitation/,
    );
    await kubectl.ok(
      ["apply", "-n", tenant.name, "-f", "-"],
      device("long", "  invitation: { validFor: 2160h }\n"),
    );
  });
});

describe("the operator's other invitation duties", () => {
  it("removes a redeemed record's setup ciphertext once its time is over", async () => {
    await kubectl.ok(["apply", "-n", tenant.name, "-f", "-"], device("setup"));
    const link = await waitForLink("setup");
    await redeemLink(link);
    const name = invitationRecordName(tokenOf(link));
    const live = await kubectl.json<ConfigMapObject>(["get", "configmap", name, "-n", db.name]);
    expect(live.data?.setupCiphertext).toBeDefined();
    // As if the portal that served it had stopped before its timer: the window is over.
    await kubectl.ok(["replace", "-f", "-"], JSON.stringify({
      ...live,
      data: { ...live.data, setupExpiresAt: new Date(Date.now() - 1000).toISOString() },
    })); // prettier-ignore
    await eventually(async () => {
      const now = await kubectl.json<ConfigMapObject>(["get", "configmap", name, "-n", db.name]);
      expect(now.data?.setupCiphertext).toBeUndefined();
      expect(now.data?.state).toBe("redeemed");
    });
  });

  it("publishes each MailDomain's client settings for the portal's autoconfiguration", async () => {
    const domain = `${tenant.name}.test`;
    await kubectl.ok(
      ["apply", "-f", "-"],
      `apiVersion: mail.devicepass.io/v1alpha1
kind: MailDomain
metadata: {name: ${domain}}
spec:
  namespaces: [${tenant.name}]
  clientSettings: {smtp: {host: smtp.${domain}, port: 587, security: STARTTLS}}
`,
    );
    try {
      await eventually(async () => {
        const cm = await kubectl.json<ConfigMapObject>([
          "get", "configmap", invitationNames.autoconfigConfigMap, "-n", db.name,
        ]); // prettier-ignore
        expect(JSON.parse(cm.data?.[domain] ?? "{}")).toEqual({
          imap: { host: "imap.example.com", port: 993, security: "SSL/TLS" },
          smtp: { host: `smtp.${domain}`, port: 587, security: "STARTTLS" },
        });
      });
    } finally {
      await kubectl.ok(["delete", "maildomain", domain]);
    }
  });

  it("logs no link or token", () => {
    const logs = running.logs.join("\n");
    expect(logs).toContain("issued an invitation");
    expect(logs).not.toMatch(/\/i\/[A-Za-z0-9_-]{43}/);
  });
});

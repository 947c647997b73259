// The five user flows of PRODUCT.md, driven with kubectl against the real API server, with the
// operator running in-process.
import { describe, expect, it } from "vitest";
import { adminKubectl, consistently, eventually } from "../support.ts";
import {
  accepts,
  devicePassword,
  mailExamples as examples,
  passdbEntries,
  readyCondition,
  secretData,
  useOperator,
} from "../operator-support.ts";

const kubectl = adminKubectl();
const devices = ["alice-iphone", "alice-laptop-bob", "alice-printer"];
const secretNames: Record<string, string> = {
  "alice-iphone": "alice-iphone-mail-credentials",
  "alice-laptop-bob": "alice-laptop-bob-mail-credentials",
  "alice-printer": "office-scanner-mail",
};

const env = useOperator("flows");
const ns = {
  get name() {
    return env.namespaces[0]!;
  },
};
const passdbNs = {
  get name() {
    return env.passdbNamespace;
  },
};

async function applyExamples(namespace: string): Promise<void> {
  await kubectl.ok(["apply", "-n", namespace, "-f", examples]);
  await kubectl.ok([
    "wait",
    "-n",
    namespace,
    "--for=condition=Ready",
    "--timeout=60s",
    "maildevice",
    "--all",
  ]);
}

async function expectOnlyPasswordsAccepted(namespace: string, names: string[]): Promise<void> {
  const entries = await passdbEntries(kubectl, passdbNs.name);
  const ours = entries.filter((e) => e.device.startsWith(`${namespace}/`));
  expect(ours.map((e) => e.device).sort()).toEqual(names.map((n) => `${namespace}/${n}`).sort());
  for (const name of names) {
    const password = await devicePassword(kubectl, namespace, secretNames[name]!);
    expect(await accepts(entries, `${namespace}/${name}`, password), `${name}'s Secret password`).toBe(true);
  }
}

describe("flow 1: kubectl apply -f examples/mail/", () => {
  it("gives each device its own password in a basic-auth Secret that the database accepts", async () => {
    await applyExamples(ns.name);
    const passwords = new Set<string>();
    for (const device of devices) {
      const secret = await kubectl.json<{
        type: string;
        metadata: {
          labels: Record<string, string>;
          ownerReferences: { kind: string; name: string; controller: boolean }[];
        };
      }>(["get", "secret", secretNames[device]!, "-n", ns.name]);
      expect(secret.type).toBe("kubernetes.io/basic-auth");
      expect(secret.metadata.labels).toMatchObject({
        "app.kubernetes.io/managed-by": "devicepass",
        "mail.devicepass.io/address": "alice",
        "mail.devicepass.io/device": device,
      });
      expect(secret.metadata.ownerReferences).toEqual([
        expect.objectContaining({ kind: "MailDevice", name: device, controller: true }),
      ]);
      const data = await secretData(kubectl, ns.name, secretNames[device]!);
      expect(data.username).toBe("alice@example.com");
      expect(data.password).toMatch(/^[A-Za-z0-9]{24}$/);
      expect(data).toMatchObject({
        "imap-host": "imap.example.com",
        "imap-port": "993",
        "smtp-security": "STARTTLS",
      });
      passwords.add(data.password!);
    }
    expect(passwords.size).toBe(3);
    await expectOnlyPasswordsAccepted(ns.name, devices);
    const entries = await passdbEntries(kubectl, passdbNs.name);
    expect(entries.find((e) => e.device === `${ns.name}/alice-printer`)?.protocols).toEqual(["smtp"]);
    expect(entries.find((e) => e.device === `${ns.name}/alice-iphone`)?.protocols).toEqual([
      "imap",
      "pop3",
      "smtp",
    ]);
    await eventually(async () => {
      const address = await kubectl.json<{ status: { devices: number; readyDevices: number } }>([
        "get",
        "mailaddress",
        "alice",
        "-n",
        ns.name,
      ]);
      expect(address.status).toMatchObject({ devices: 3, readyDevices: 3 });
    });
  });

  it("lists devices with address, display name, user, creator, readiness, last use, rotation and age (flow 5)", async () => {
    const table = await kubectl.ok(["get", "maildevices", "-n", ns.name]);
    const [header, ...rows] = table.trim().split("\n");
    expect(header).toMatch(
      /^NAME\s+ADDRESS\s+DISPLAY NAME\s+USER\s+CREATED BY\s+READY\s+LAST USED\s+ROTATED\s+AGE$/,
    );
    // Created by the harness's admin; never logged in, so LAST USED is empty.
    expect(rows.find((r) => r.startsWith("alice-laptop-bob"))).toMatch(
      /alice@example\.com\s+Bob's laptop\s+Bob Martin\s+admin\s+True\s+\d+s\s+\d+s/,
    );
  });
});

describe("flow 2: kubectl annotate … mail.devicepass.io/rotate", () => {
  it("rotates one device: the old password stops working, a new one is in the Secret, once per value", async () => {
    const before = await devicePassword(kubectl, ns.name, secretNames["alice-iphone"]!);
    const others = await devicePassword(kubectl, ns.name, secretNames["alice-printer"]!);
    await kubectl.ok([
      "annotate",
      "-n",
      ns.name,
      "maildevice",
      "alice-iphone",
      "mail.devicepass.io/rotate=r1",
      "--overwrite",
    ]);
    const after = await eventually(async () => {
      const p = await devicePassword(kubectl, ns.name, secretNames["alice-iphone"]!);
      expect(p).not.toBe(before);
      return p;
    });
    await eventually(async () => {
      const entries = await passdbEntries(kubectl, passdbNs.name);
      expect(await accepts(entries, `${ns.name}/alice-iphone`, after)).toBe(true);
      expect(await accepts(entries, `${ns.name}/alice-iphone`, before)).toBe(false);
    });
    expect(await devicePassword(kubectl, ns.name, secretNames["alice-printer"]!)).toBe(others);
    await eventually(async () => {
      const device = await kubectl.json<{ status: { rotationCount: number; lastRotateValue: string } }>([
        "get",
        "maildevice",
        "alice-iphone",
        "-n",
        ns.name,
      ]);
      expect(device.status).toMatchObject({ rotationCount: 1, lastRotateValue: "r1" });
    });
    // The same value again (GitOps re-applying it) changes nothing.
    await kubectl.ok([
      "annotate",
      "-n",
      ns.name,
      "maildevice",
      "alice-iphone",
      "mail.devicepass.io/rotate=r1",
      "--overwrite",
    ]);
    await kubectl.ok(["label", "-n", ns.name, "maildevice", "alice-iphone", "touched=yes"]);
    await consistently(async () => {
      expect(await devicePassword(kubectl, ns.name, secretNames["alice-iphone"]!)).toBe(after);
    }, 1500);
  });

  it("on a MailAddress rotates every device of the address exactly once", async () => {
    const before = Object.fromEntries(
      await Promise.all(
        devices.map(async (d) => [d, await devicePassword(kubectl, ns.name, secretNames[d]!)] as const),
      ),
    );
    await kubectl.ok([
      "annotate",
      "-n",
      ns.name,
      "mailaddress",
      "alice",
      "mail.devicepass.io/rotate=all-1",
      "--overwrite",
    ]);
    await eventually(async () => {
      for (const d of devices)
        expect(await devicePassword(kubectl, ns.name, secretNames[d]!)).not.toBe(before[d]);
      await expectOnlyPasswordsAccepted(ns.name, devices);
    });
    const counts = await kubectl.json<{
      items: { metadata: { name: string }; status: { rotationCount: number } }[];
    }>(["get", "maildevices", "-n", ns.name]);
    expect(Object.fromEntries(counts.items.map((d) => [d.metadata.name, d.status.rotationCount]))).toEqual({
      "alice-iphone": 2,
      "alice-laptop-bob": 1,
      "alice-printer": 1,
    });
  });
});

describe("flow 3 and 4: kubectl delete", () => {
  it("deleting one device deletes its Secret and removes its hash before the object goes", async () => {
    await kubectl.ok(["delete", "-n", ns.name, "maildevice", "alice-iphone"]); // waits for the finalizer
    const secret = await kubectl.run(["get", "secret", "-n", ns.name, secretNames["alice-iphone"]!]);
    expect(secret.stderr).toContain("NotFound");
    const entries = await passdbEntries(kubectl, passdbNs.name);
    expect(entries.map((e) => e.device)).not.toContain(`${ns.name}/alice-iphone`);
    await expectOnlyPasswordsAccepted(ns.name, ["alice-laptop-bob", "alice-printer"]);
  });

  it("deleting all devices by label leaves nothing of them in the database", async () => {
    await kubectl.ok(["delete", "-n", ns.name, "maildevices", "-l", "mail.devicepass.io/address=alice"]);
    const entries = await passdbEntries(kubectl, passdbNs.name);
    expect(entries.filter((e) => e.device.startsWith(`${ns.name}/`))).toEqual([]);
    const secrets = await kubectl.ok([
      "get",
      "secrets",
      "-n",
      ns.name,
      "-l",
      "app.kubernetes.io/managed-by=devicepass",
      "-o",
      "name",
    ]);
    expect(secrets.trim()).toBe("");
  });

  it("kubectl delete maildevices --all does the same", async () => {
    await applyExamples(ns.name);
    await kubectl.ok(["delete", "-n", ns.name, "maildevices", "--all"]);
    const entries = await passdbEntries(kubectl, passdbNs.name);
    expect(entries.filter((e) => e.device.startsWith(`${ns.name}/`))).toEqual([]);
  });

  it("deleting the MailAddress revokes every credential of its devices", async () => {
    await applyExamples(ns.name);
    await kubectl.ok(["delete", "-n", ns.name, "mailaddress", "alice"]); // waits for the address finalizer
    const entries = await passdbEntries(kubectl, passdbNs.name);
    expect(entries.filter((e) => e.device.startsWith(`${ns.name}/`))).toEqual([]);
    for (const d of devices) {
      expect((await kubectl.run(["get", "secret", "-n", ns.name, secretNames[d]!])).stderr).toContain(
        "NotFound",
      );
      await eventually(async () =>
        expect((await readyCondition(kubectl, "maildevice", ns.name, d))?.reason).toBe("AddressNotFound"),
      );
    }
    await kubectl.ok(["delete", "-n", ns.name, "maildevices", "--all"]);
  });
});

describe("plaintext passwords", () => {
  it("never reach the operator's logs or events", async () => {
    await applyExamples(ns.name);
    await kubectl.ok([
      "annotate",
      "-n",
      ns.name,
      "maildevice",
      "--all",
      "mail.devicepass.io/rotate=scan",
      "--overwrite",
    ]);
    const passwords = await eventually(async () => {
      const list = await Promise.all(devices.map((d) => devicePassword(kubectl, ns.name, secretNames[d]!)));
      await expectOnlyPasswordsAccepted(ns.name, devices);
      return list;
    });
    const events = await kubectl.ok(["get", "events", "-n", ns.name, "-o", "json"]);
    const statuses = await kubectl.ok(["get", "maildevices,mailaddresses", "-n", ns.name, "-o", "json"]);
    const passdb = JSON.stringify(await passdbEntries(kubectl, passdbNs.name));
    expect(env.running.logs.length).toBeGreaterThan(10);
    for (const password of passwords) {
      for (const [where, text] of Object.entries({
        logs: env.running.logs.join("\n"),
        events,
        statuses,
        passdb,
      })) {
        expect(text.includes(password), `a password in ${where}`).toBe(false);
      }
    }
    expect(events).toContain("Rotated");
  });
});

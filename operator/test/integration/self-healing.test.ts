// Consistency between device Secrets and the password database is restored without a human:
// a deleted Secret means a new password, a hand-edited password is replaced, and a deleted or
// edited database Secret is rebuilt without changing any device's password.
import { describe, expect, it } from "vitest";
import { adminKubectl, eventually } from "../support.ts";
import { accepts, devicePassword, passdbEntries, useOperator } from "../operator-support.ts";

const kubectl = adminKubectl();
const env = useOperator("heal", { config: { passdbShards: 2 }, applyExamples: true });
const iphoneSecret = "alice-iphone-mail-credentials";

const device = (name: string) => `${env.namespaces[0]}/${name}`;

describe("device Secrets", () => {
  it("a deleted Secret means a new password, and the old one stops working", async () => {
    const before = await devicePassword(kubectl, env.namespaces[0]!, iphoneSecret);
    await kubectl.ok(["delete", "secret", "-n", env.namespaces[0]!, iphoneSecret]);
    const after = await eventually(async () => {
      const p = await devicePassword(kubectl, env.namespaces[0]!, iphoneSecret);
      expect(p).not.toBe(before);
      const entries = await passdbEntries(kubectl, env.passdbNamespace);
      expect(await accepts(entries, device("alice-iphone"), p)).toBe(true);
      expect(await accepts(entries, device("alice-iphone"), before)).toBe(false);
      return p;
    });
    expect(after).toMatch(/^[A-Za-z0-9]{24}$/);
    const events = await kubectl.ok([
      "get",
      "events",
      "-n",
      env.namespaces[0]!,
      "--field-selector",
      "involvedObject.name=alice-iphone",
    ]);
    expect(events).toContain("Reissued");
  });

  it("a password edited by hand is replaced by a new generated one; neither the edit nor the old works", async () => {
    const before = await devicePassword(kubectl, env.namespaces[0]!, iphoneSecret);
    const edited = "chosen-by-hand-1234";
    await kubectl.ok([
      "patch",
      "secret",
      "-n",
      env.namespaces[0]!,
      iphoneSecret,
      "--type=merge",
      "-p",
      JSON.stringify({ stringData: { password: edited } }),
    ]);
    await eventually(async () => {
      const p = await devicePassword(kubectl, env.namespaces[0]!, iphoneSecret);
      expect(p).not.toBe(edited);
      expect(p).not.toBe(before);
      const entries = await passdbEntries(kubectl, env.passdbNamespace);
      expect(await accepts(entries, device("alice-iphone"), p)).toBe(true);
      expect(await accepts(entries, device("alice-iphone"), edited)).toBe(false);
      expect(await accepts(entries, device("alice-iphone"), before)).toBe(false);
    });
    const events = await kubectl.ok([
      "get",
      "events",
      "-n",
      env.namespaces[0]!,
      "--field-selector",
      "involvedObject.name=alice-iphone",
    ]);
    expect(events).toContain("PasswordReplaced");
  });
});

describe("the database Secrets", () => {
  async function snapshot() {
    const entries = await passdbEntries(kubectl, env.passdbNamespace);
    return entries.map((e) => `${e.device} ${e.hash}`).sort();
  }

  it("a deleted shard is rebuilt with the same hashes, changing no password", async () => {
    const before = await snapshot();
    const passwords = await Promise.all(
      ["alice-iphone-mail-credentials", "office-scanner-mail"].map((s) =>
        devicePassword(kubectl, env.namespaces[0]!, s),
      ),
    );
    await kubectl.ok([
      "delete",
      "secrets",
      "-n",
      env.passdbNamespace,
      "-l",
      "app.kubernetes.io/component=passdb",
    ]);
    await eventually(async () => expect(await snapshot()).toEqual(before));
    expect(await devicePassword(kubectl, env.namespaces[0]!, "alice-iphone-mail-credentials")).toBe(
      passwords[0],
    );
    expect(await devicePassword(kubectl, env.namespaces[0]!, "office-scanner-mail")).toBe(passwords[1]);
  });

  it("a shard edited by hand (a rogue hash, a removed entry) is restored", async () => {
    const before = await snapshot();
    const shards = await kubectl.json<{ items: { metadata: { name: string }; data?: Record<string, string> }[] }>([
      "get", "secrets", "-n", env.passdbNamespace, "-l", "app.kubernetes.io/component=passdb",
    ]); // prettier-ignore
    const withData = shards.items.find((s) => Object.keys(s.data ?? {}).length > 0)!;
    const key = Object.keys(withData.data!)[0]!;
    const rogue = `alice@example.com\t${env.namespaces[0]!}/intruder\timap\t{ARGON2ID}$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n`;
    await kubectl.ok([
      "patch", "secret", "-n", env.passdbNamespace, withData.metadata.name, "--type=merge",
      "-p", JSON.stringify({ data: { [key]: Buffer.from(rogue).toString("base64"), "extra_40example.com": Buffer.from(rogue).toString("base64") } }),
    ]); // prettier-ignore
    await eventually(async () => expect(await snapshot()).toEqual(before));
  });
});

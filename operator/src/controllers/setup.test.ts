// The wiring: which changes bring which keys to which controller (the triggers of each module's
// setup, with their echo filters), on the Operator's real caches and queues, filled by hand.
import { describe, expect, it } from "vitest";
import { defaultConfig } from "../config.ts";
import { controllerNames } from "../context.ts";
import { SealKey } from "../credentials/seal.ts";
import type { KubeClient } from "../kube/client.ts";
import { encodeData } from "../kube/objects.ts";
import { createLogger } from "../log.ts";
import { Operator } from "../operator.ts";
import { address, device, domain } from "../policy/fixtures.test-support.ts";

function operator() {
  const op = new Operator({
    client: {} as KubeClient, // nothing runs: no reconcile, no informer
    config: defaultConfig({ passdbShards: 4, passdbSecretPrefix: "db" }),
    log: createLogger("silent"),
    seal: new SealKey(Buffer.alloc(32, 3)),
  });
  const queue = (name: keyof typeof controllerNames) => op.controller(controllerNames[name])!.queue;
  /** Keys due now, draining the queue. */
  const drain = async (name: keyof typeof controllerNames) => {
    const q = queue(name);
    const keys: string[] = [];
    while (q.depth > 0) {
      const item = await q.get();
      keys.push(item!.key);
      q.done(item!.key);
    }
    return keys;
  };
  return { op, queue, drain };
}

const withVersion = <T extends { metadata: object }>(
  o: T,
  resourceVersion: string,
  extra: Partial<T["metadata"]> = {},
) => ({
  ...o,
  metadata: { ...o.metadata, resourceVersion, ...extra },
});

describe("the operator's triggers", () => {
  it("a MailDomain's own status write brings nothing back; its spec brings its addresses' devices", async () => {
    const { op, drain } = operator();
    const alice = address("alice", "alice@example.com");
    op.cache.addresses.assumeWritten(undefined, alice);
    op.cache.devices.assumeWritten(undefined, device("phone"));
    const d = { ...domain("example.com"), metadata: { ...domain("example.com").metadata, generation: 1 } };
    op.cache.domains.assumeWritten(undefined, d);
    await drain("device");
    await drain("domain");
    op.cache.domains.assumeWritten("1", { ...withVersion(d, "2"), status: { addresses: 1 } });
    expect(await drain("device")).toEqual([]);
    expect(await drain("domain")).toEqual([]);
    op.cache.domains.assumeWritten("2", withVersion(d, "3", { generation: 2 }));
    expect(await drain("device")).toEqual(["ns/phone"]);
    expect(await drain("domain")).toEqual(["example.com"]);
  });

  it("a deleted MailAddress brings back its own devices (the index no longer finds it)", async () => {
    const { op, drain } = operator();
    const alice = address("alice", "alice@example.com");
    op.cache.addresses.assumeWritten(undefined, alice);
    op.cache.devices.assumeWritten(undefined, device("phone"));
    await drain("device");
    (op.cache.addresses as unknown as { remove(key: string): void }).remove("ns/alice");
    expect(await drain("device")).toEqual(["ns/phone"]);
  });

  it("a device whose entry the database just published goes first", async () => {
    const { op, queue } = operator();
    for (const name of ["a", "b", "c"]) op.cache.devices.assumeWritten(undefined, device(name));
    const { files } = await import("../passdb/format.ts").then((f) =>
      f.renderShard(
        [
          {
            address: "alice@example.com",
            owner: { address: "alice@example.com", namespace: "ns", since: "2026-01-01T00:00:00Z" },
            entries: [
              {
                address: "alice@example.com",
                device: "ns/c",
                protocols: ["imap"],
                hash: `{ARGON2ID}$argon2id$v=19$m=1024,t=1,p=1$${"s".repeat(22)}$${"h".repeat(43)}`,
              },
            ],
          },
        ],
        1 << 20,
      ),
    );
    op.cache.passdbShards.assumeWritten(undefined, {
      metadata: { name: "db-01", namespace: "devicepass-system", resourceVersion: "1" },
      data: encodeData(Object.fromEntries(files)),
    });
    expect((await queue("device").get())?.key).toBe("ns/c");
  });

  it("a shard the passdb controller did not write (a hand edit) brings that shard back", async () => {
    const { op, queue } = operator();
    const shard = {
      metadata: { name: "db-02", namespace: "devicepass-system", resourceVersion: "10" },
      data: {},
    };
    op.cache.passdbShards.assumeWritten(undefined, shard);
    expect(queue("passdb").depth).toBe(1); // unknown to it: a shard it did not write
    await queue("passdb")
      .get()
      .then((i) => queue("passdb").done(i!.key));
    op.cache.passdbShards.assumeWritten("10", withVersion(shard, "11"));
    expect(queue("passdb").depth).toBe(1);
  });
});

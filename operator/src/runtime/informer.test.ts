// The informer's store: what our own writes may put into it before their watch events arrive.
import { describe, expect, it } from "vitest";
import type { KubeClient } from "../kube/client.ts";
import { createLogger } from "../log.ts";
import { Informer, olderVersion } from "./informer.ts";

interface Thing {
  metadata: { name: string; namespace: string; resourceVersion: string };
  value: string;
}

const thing = (resourceVersion: string, value: string): Thing => ({
  metadata: { name: "a", namespace: "ns", resourceVersion },
  value,
});

function informer() {
  const changes: string[] = [];
  const i = new Informer<Thing>({
    client: {} as KubeClient, // never called: nothing here lists or watches
    ref: { group: "", version: "v1", plural: "things" },
    log: createLogger("silent"),
  });
  i.onChange((t) => changes.push(t.value));
  return { i, changes };
}

describe("the store", () => {
  it("never goes back to an older version (a watch resumed after an outage replays old ones)", () => {
    const { i, changes } = informer();
    i.assumeWritten(undefined, thing("10", "our latest write"));
    i.assumeWritten("10", thing("8", "replayed"));
    expect(i.get("ns/a")?.value).toBe("our latest write");
    expect(changes).toEqual(["our latest write"]);
    expect(olderVersion("9", "10")).toBe(true);
    expect(olderVersion("10", "9")).toBe(false);
    expect(olderVersion("abc", "10")).toBe(false); // not an etcd revision: never called older
  });
});

describe("Informer.assumeWritten", () => {
  it("stores a write's result over the version it was computed from, and tells the handlers", () => {
    const { i, changes } = informer();
    i.assumeWritten(undefined, thing("1", "created"));
    i.assumeWritten("1", thing("2", "updated"));
    expect(i.get("ns/a")?.value).toBe("updated");
    expect(changes).toEqual(["created", "updated"]);
  });

  it("never hides a newer version the watch delivered meanwhile (a hand edit after our write)", () => {
    const { i, changes } = informer();
    i.assumeWritten(undefined, thing("1", "ours"));
    i.assumeWritten("1", thing("3", "edited by hand")); // stands in for the watch event of version 3
    i.assumeWritten("1", thing("2", "our write, answered late"));
    expect(i.get("ns/a")?.value).toBe("edited by hand");
    expect(changes).toEqual(["ours", "edited by hand"]);
  });

  it("ignores a result when the store already has it (its watch event came first)", () => {
    const { i, changes } = informer();
    i.assumeWritten(undefined, thing("1", "ours"));
    i.assumeWritten(undefined, thing("1", "ours"));
    expect(changes).toEqual(["ours"]);
  });
});

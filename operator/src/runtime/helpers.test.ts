// The finalizer and status helpers, over a recording client and a cache filled by hand.
import { describe, expect, it } from "vitest";
import type { KubeClient, ResourceRef } from "../kube/client.ts";
import { ApiError } from "../kube/errors.ts";
import type { EventRecorder } from "../kube/events.ts";
import { createLogger } from "../log.ts";
import { awaitChange, requeueAfter } from "./controller.ts";
import { finalizer } from "./finalizer.ts";
import { Informer } from "./informer.ts";
import { applyStatus, type StatusObject } from "./status.ts";

interface Call {
  verb: string;
  ref: ResourceRef;
  body: unknown;
}

/** A client that records what it is asked and answers with `answer`. */
function recordingClient(answer: (call: Call) => unknown = (c) => c.body) {
  const calls: Call[] = [];
  const respond = (verb: string) => (ref: ResourceRef, body: unknown) => {
    const call = { verb, ref, body };
    calls.push(call);
    const result = answer(call);
    return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
  };
  const client = { mergePatch: respond("merge-patch"), apply: respond("apply") } as unknown as KubeClient;
  return { client, calls };
}

const resource = { group: "g", version: "v1", plural: "things" };
const thing = (
  meta: Partial<StatusObject["metadata"]> & { finalizers?: string[]; deletionTimestamp?: string } = {},
) => ({
  apiVersion: "g/v1",
  kind: "Thing",
  metadata: { name: "a", namespace: "ns", resourceVersion: "5", ...meta },
});

describe("finalizer", () => {
  const name = "g/cleanup";
  const handlers = (log: string[]) => ({
    apply: () => (log.push("apply"), Promise.resolve(requeueAfter(1))),
    cleanup: () => (log.push("cleanup"), Promise.resolve("done" as const)),
  });

  it("adds the finalizer and labels in one patch over the version read, then applies", async () => {
    const { client, calls } = recordingClient(() => ({
      metadata: { resourceVersion: "6", finalizers: [name] },
    }));
    const log: string[] = [];
    const action = await finalizer(
      { client, resource, finalizer: name, fieldManager: "m", labels: { l: "v" } },
      thing({ finalizers: ["other"] }),
      handlers(log),
    );
    expect(calls).toHaveLength(1);
    expect(calls[0]!.body).toEqual({
      metadata: { resourceVersion: "5", finalizers: ["other", name], labels: { l: "v" } },
    });
    expect(log).toEqual(["apply"]);
    expect(action).toEqual(requeueAfter(1));
  });

  it("only applies when the finalizer and labels are there", async () => {
    const { client, calls } = recordingClient();
    const log: string[] = [];
    await finalizer(
      { client, resource, finalizer: name, fieldManager: "m" },
      thing({ finalizers: [name] }),
      handlers(log),
    );
    expect(calls).toEqual([]);
    expect(log).toEqual(["apply"]);
  });

  it("cleans up on deletion and then removes only its own finalizer; a 404 is done", async () => {
    const { client, calls } = recordingClient(() => new ApiError("NotFound", 404, "gone"));
    const log: string[] = [];
    const deleting = thing({ finalizers: ["other", name], deletionTimestamp: "2026-01-01T00:00:00Z" });
    expect(
      await finalizer({ client, resource, finalizer: name, fieldManager: "m" }, deleting, handlers(log)),
    ).toEqual(awaitChange);
    expect(log).toEqual(["cleanup"]);
    expect(calls[0]!.body).toEqual({ metadata: { resourceVersion: "5", finalizers: ["other"] } });
  });

  it("keeps the finalizer while cleanup is not done, and does nothing for an object without it", async () => {
    const { client, calls } = recordingClient();
    const waiting = {
      apply: () => Promise.resolve(awaitChange),
      cleanup: () => Promise.resolve(requeueAfter(7)),
    };
    const deleting = thing({ finalizers: [name], deletionTimestamp: "2026-01-01T00:00:00Z" });
    expect(
      await finalizer({ client, resource, finalizer: name, fieldManager: "m" }, deleting, waiting),
    ).toEqual(requeueAfter(7));
    expect(
      await finalizer(
        { client, resource, finalizer: name, fieldManager: "m" },
        thing({ deletionTimestamp: "x" }),
        waiting,
      ),
    ).toEqual(awaitChange);
    expect(calls).toEqual([]);
  });
});

describe("applyStatus", () => {
  const cache = () =>
    new Informer<StatusObject & { status?: Record<string, unknown> }>({
      client: {} as KubeClient,
      ref: resource,
      log: createLogger("silent"),
    });
  const events = () => {
    const recorded: string[] = [];
    return {
      recorded,
      recorder: {
        record: (_o: unknown, type: string, reason: string) => recorded.push(`${type} ${reason}`),
      } as unknown as EventRecorder,
    };
  };
  const ready = (status: "True" | "False", reason: string) => ({
    type: "Ready",
    status,
    reason,
    message: `${reason}.`,
    lastTransitionTime: "t",
  });

  it("writes only what changed in its own fields, and puts the result in the cache", async () => {
    const { client, calls } = recordingClient((c) => ({
      ...(c.body as object),
      metadata: { name: "a", namespace: "ns", resourceVersion: "6" },
    }));
    const store = cache();
    const { recorder } = events();
    const writer = {
      client,
      resource,
      fieldManager: "m",
      events: recorder,
      cache: store,
      fields: ["conditions", "count"],
    };
    const object = { ...thing(), status: { conditions: [ready("True", "Fine")], count: 1, theirs: "x" } };
    store.assumeWritten(undefined, object);
    // Another controller's field differing is no reason to write.
    expect(await applyStatus(writer, object, { conditions: [ready("True", "Fine")], count: 1 })).toBe(false);
    expect(await applyStatus(writer, object, { conditions: [ready("True", "Fine")], count: 2 })).toBe(true);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.ref.subresource).toBe("status");
    expect((calls[0]!.body as { status: unknown }).status).toEqual({
      conditions: [ready("True", "Fine")],
      count: 2,
    });
    expect(store.get("ns/a")?.metadata.resourceVersion).toBe("6");
  });

  it("records a Warning when Ready turns False for a new reason, not for a quiet one", async () => {
    const { client } = recordingClient((c) => ({
      ...(c.body as object),
      metadata: { name: "a", namespace: "ns", resourceVersion: "6" },
    }));
    const { recorded, recorder } = events();
    const writer = {
      client,
      resource,
      fieldManager: "m",
      events: recorder,
      cache: cache(),
      fields: ["conditions"],
      quietReasons: new Set(["Waiting"]),
    };
    const object = { ...thing(), status: { conditions: [ready("True", "Fine")] } };
    await applyStatus(writer, object, { conditions: [ready("False", "Waiting")] });
    await applyStatus(writer, object, { conditions: [ready("False", "Broken")] });
    await applyStatus(
      writer,
      { ...object, status: { conditions: [ready("False", "Broken")] } },
      { conditions: [ready("False", "Broken"), { ...ready("True", "X"), type: "Other" }] },
    );
    expect(recorded).toEqual(["Warning Broken"]);
  });
});

import { describe, expect, it, vi } from "vitest";
import { backoffDelay, WorkQueue } from "./queue.ts";

describe("WorkQueue", () => {
  it("merges repeated adds of a waiting key", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("b");
    q.add("a");
    expect(q.depth).toBe(2);
    expect((await q.get())?.key).toBe("a");
    expect((await q.get())?.key).toBe("b");
  });

  it("never hands out a key that is in flight; re-adds it after done()", async () => {
    const q = new WorkQueue();
    q.add("a");
    const first = await q.get();
    q.add("a"); // an event while "a" is being reconciled
    expect(q.depth).toBe(0);
    q.add("b");
    expect((await q.get())?.key).toBe("b");
    q.done(first!.key);
    expect(q.depth).toBe(1);
    expect((await q.get())?.key).toBe("a");
  });

  it("wakes a waiting worker", async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.add("x");
    expect((await next)?.key).toBe("x");
  });

  it("backs off exponentially per key and forgets after success", () => {
    const q = new WorkQueue({ baseMs: 10, maxMs: 100 });
    expect(q.addRateLimited("k")).toBe(10);
    expect(q.addRateLimited("k")).toBe(20);
    expect(q.addRateLimited("k")).toBe(40);
    expect(q.addRateLimited("k")).toBe(80);
    expect(q.addRateLimited("k")).toBe(100);
    expect(q.retries("k")).toBe(5);
    q.forget("k");
    expect(q.addRateLimited("k")).toBe(10);
    q.shutDown();
  });

  it("caps a key's backoff at a given maximum, below the policy's", () => {
    const q = new WorkQueue({ baseMs: 10, maxMs: 1000 });
    for (let i = 0; i < 5; i++) q.addRateLimited("k", 0, 50);
    expect(q.addRateLimited("k", 0, 50)).toBe(50);
    expect(q.addRateLimited("k", 70, 50)).toBe(70); // Retry-After still wins
    expect(q.addRateLimited("k")).toBe(1000);
    q.shutDown();
  });

  it("honours a longer minimum delay such as Retry-After", () => {
    const q = new WorkQueue({ baseMs: 10, maxMs: 100 });
    expect(q.addRateLimited("k", 1000)).toBe(1000);
    q.shutDown();
  });

  it("adds after a delay, the earliest of several pending delays winning", async () => {
    vi.useFakeTimers();
    try {
      const q = new WorkQueue();
      q.addAfter("k", 200);
      q.addAfter("k", 20);
      await vi.advanceTimersByTimeAsync(19);
      expect(q.depth).toBe(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(q.depth).toBe(1);
      expect((await q.get())?.key).toBe("k");
      q.done("k");
      await vi.advanceTimersByTimeAsync(500); // the later delay was dropped
      expect(q.depth).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("serves namespaces round-robin, so one tenant's many keys never hold back another's", async () => {
    const q = new WorkQueue();
    for (let i = 0; i < 5; i++) q.add(`big/d${i}`);
    q.add("small/d0");
    q.add("cluster-scoped");
    const order: string[] = [];
    for (let i = 0; i < 7; i++) order.push((await q.get())!.key);
    expect(order.slice(0, 3)).toEqual(["big/d0", "small/d0", "cluster-scoped"]);
    expect(order.slice(3)).toEqual(["big/d1", "big/d2", "big/d3", "big/d4"]);
  });

  it("serves high-priority keys first, and raises a waiting key without running it twice", async () => {
    const q = new WorkQueue();
    q.add("ns/a");
    q.add("ns/b");
    q.add("ns/c");
    q.add("ns/c", "high");
    q.add("ns/c", "normal"); // a later normal add keeps it high
    expect(q.depth).toBe(3);
    const order: string[] = [];
    for (let i = 0; i < 3; i++) order.push((await q.get())!.key);
    expect(order).toEqual(["ns/c", "ns/a", "ns/b"]);
    expect(q.depth).toBe(0);
  });

  it("re-adds a key raised while in flight at its raised priority", async () => {
    const q = new WorkQueue();
    q.add("ns/a");
    const first = await q.get();
    q.add("ns/b");
    q.add("ns/a", "high");
    q.done(first!.key);
    expect((await q.get())?.key).toBe("ns/a");
    expect((await q.get())?.key).toBe("ns/b");
  });

  it("hands out a namespace's many keys in the order they came, also as they keep coming", async () => {
    const q = new WorkQueue();
    const order: string[] = [];
    for (let i = 0; i < 3000; i++) q.add(`ns/${i}`);
    for (let i = 0; i < 2500; i++) {
      const { key } = (await q.get())!;
      order.push(key);
      q.done(key);
      if (i % 2 === 0) q.add(`ns/late-${i}`); // added while the front is being consumed
    }
    while (q.depth > 0) {
      const { key } = (await q.get())!;
      order.push(key);
      q.done(key);
    }
    const late = Array.from({ length: 1250 }, (_, j) => `ns/late-${j * 2}`);
    expect(order).toEqual([...Array.from({ length: 3000 }, (_, i) => `ns/${i}`), ...late]);
  });

  it("serves low-priority keys (the resync) after every normal one, and raises a low key a change brings", async () => {
    const q = new WorkQueue();
    for (const key of ["ns/a", "ns/b", "ns/c"]) q.add(key, "low");
    q.add("ns/new");
    q.add("ns/c"); // changed meanwhile: served as a change, once
    q.add("ns/new", "low"); // already waiting earlier
    const order: string[] = [];
    while (q.depth > 0) {
      const { key } = (await q.get())!;
      order.push(key);
      q.done(key);
    }
    expect(order).toEqual(["ns/new", "ns/c", "ns/a", "ns/b"]);
  });

  it("releases waiting workers on shutdown", async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.shutDown();
    expect(await next).toBeUndefined();
  });
});

describe("backoffDelay", () => {
  it("doubles from the base up to the maximum", () => {
    expect([1, 2, 3, 20].map((n) => backoffDelay(n, { baseMs: 5, maxMs: 1000 }))).toEqual([5, 10, 20, 1000]);
  });
});

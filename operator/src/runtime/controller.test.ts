// The controller loop: what follows a reconcile's action or error (the error policy), with a
// real work queue and no API server.
import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../kube/errors.ts";
import { createLogger } from "../log.ts";
import {
  Controller,
  TerminalError,
  awaitChange,
  defaultErrorPolicy,
  requeueAfter,
  requeueWithBackoff,
  serverUnavailableMaxDelayMs,
  type Action,
} from "./controller.ts";

const log = createLogger("silent");

/** A controller whose reconcile answers from `answers` in turn, recording the keys it saw. */
function controllerWith(answers: (() => Promise<Action>)[]) {
  const seen: string[] = [];
  const results: string[] = [];
  const controller = new Controller({
    name: "test",
    log,
    workers: 1,
    backoff: { baseMs: 10, maxMs: 1000 },
    reconcile: async (key) => {
      seen.push(key);
      const answer = answers.shift();
      if (!answer) return awaitChange;
      return answer();
    },
    metrics: {
      reconciled: (_c, result) => results.push(result),
      queueWaited: () => {},
      retried: () => {},
    },
  });
  return { controller, seen, results };
}

const settle = () => vi.advanceTimersByTimeAsync(0);

describe("Controller", () => {
  it("retries a failing key with exponential backoff, and forgets its failures after a success", async () => {
    vi.useFakeTimers();
    try {
      const fail = () => Promise.reject(new Error("boom"));
      const { controller, seen, results } = controllerWith([fail, fail, () => Promise.resolve(awaitChange)]);
      controller.start();
      controller.enqueue("ns/a");
      await settle();
      expect(seen).toEqual(["ns/a"]);
      await vi.advanceTimersByTimeAsync(10); // first retry after the base delay
      expect(seen).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(19);
      expect(seen).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(1); // then twice as long
      expect(seen).toHaveLength(3);
      expect(results).toEqual(["error", "error", "success"]);
      expect(controller.queue.retries("ns/a")).toBe(0);
      await controller.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it("does not retry a terminal error, nor a request the API server refused as invalid", async () => {
    vi.useFakeTimers();
    try {
      const { controller, seen, results } = controllerWith([
        () => Promise.reject(new TerminalError("needs a change")),
        () => Promise.reject(new ApiError("Invalid", 422, "bad")),
      ]);
      controller.start();
      controller.enqueue("ns/a");
      controller.enqueue("ns/b");
      await vi.advanceTimersByTimeAsync(60_000);
      expect(seen).toEqual(["ns/a", "ns/b"]);
      expect(results).toEqual(["terminal", "terminal"]);
      controller.enqueue("ns/a"); // a change brings it back
      await settle();
      expect(seen).toEqual(["ns/a", "ns/b", "ns/a"]);
      await controller.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it("requeues after a delay, or after the key's backoff, when reconcile asks", async () => {
    vi.useFakeTimers();
    try {
      const { controller, seen } = controllerWith([
        () => Promise.resolve(requeueAfter(500)),
        () => Promise.resolve(requeueWithBackoff),
        () => Promise.resolve(requeueWithBackoff),
      ]);
      controller.start();
      controller.enqueue("ns/a");
      await settle();
      await vi.advanceTimersByTimeAsync(499);
      expect(seen).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(seen).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(10);
      expect(seen).toHaveLength(3);
      await vi.advanceTimersByTimeAsync(19);
      expect(seen).toHaveLength(3); // the backoff doubled
      await vi.advanceTimersByTimeAsync(1);
      expect(seen).toHaveLength(4);
      await controller.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("defaultErrorPolicy", () => {
  it("gives up on refusals, honours Retry-After, and caps the wait when the server is unavailable", () => {
    expect(defaultErrorPolicy(new TerminalError("x"))).toEqual({ retry: false });
    expect(defaultErrorPolicy(new ApiError("Forbidden", 403, "x"))).toEqual({ retry: false });
    expect(defaultErrorPolicy(new ApiError("BadRequest", 400, "x"))).toEqual({ retry: false });
    expect(defaultErrorPolicy(new ApiError("Conflict", 409, "x"))).toEqual({
      retry: true,
      minDelayMs: 0,
      maxDelayMs: undefined,
    });
    expect(defaultErrorPolicy(new ApiError("TooManyRequests", 429, "x", 3))).toEqual({
      retry: true,
      minDelayMs: 3000,
      maxDelayMs: serverUnavailableMaxDelayMs,
    });
    expect(defaultErrorPolicy(new Error("a bug"))).toEqual({ retry: true, minDelayMs: 0 });
  });
});

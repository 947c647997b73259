// Wrong links are rate-limited per client network, in bounded memory.
import { describe, expect, it } from "vitest";
import { clientAddress, clientKey, FailureRateLimiter } from "./rate-limit.ts";

describe("the failure rate limiter", () => {
  it("allows a burst, then one more per refill period", () => {
    const limiter = new FailureRateLimiter({ burst: 3, refillMs: 1000, maxClients: 10 });
    for (let i = 0; i < 3; i++) {
      expect(limiter.allowed("a", 0)).toBe(true);
      limiter.fail("a", 0);
    }
    expect(limiter.allowed("a", 0)).toBe(false);
    expect(limiter.retryAfterSeconds("a", 0)).toBe(1);
    expect(limiter.allowed("b", 0)).toBe(true);
    expect(limiter.allowed("a", 999)).toBe(false);
    expect(limiter.allowed("a", 1000)).toBe(true);
    limiter.fail("a", 1000);
    expect(limiter.allowed("a", 1000)).toBe(false);
  });

  it("remembers at most maxClients, forgetting the least recently failed", () => {
    const limiter = new FailureRateLimiter({ burst: 1, refillMs: 60_000, maxClients: 100 });
    for (let i = 0; i < 10_000; i++) limiter.fail(`10.0.${i >> 8}.${i & 255}`, 0);
    expect(limiter.size).toBe(100);
    expect(limiter.allowed("10.0.39.15", 0)).toBe(false); // the last one
    expect(limiter.allowed("10.0.0.0", 0)).toBe(true); // forgotten
  });
});

describe("client keys", () => {
  it.each([
    ["192.0.2.7", "192.0.2.7"],
    ["::ffff:192.0.2.7", "192.0.2.7"],
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"],
    ["2001:db8:1:2::9", "2001:db8:1:2::/64"],
    ["2001:0db8:0001:0002:aaaa::1", "2001:db8:1:2::/64"],
    ["::1", "0:0:0:0::/64"],
  ])("%s → %s", (address, key) => expect(clientKey(address)).toBe(key));

  it("take X-Forwarded-For only from trusted hops", () => {
    expect(clientAddress("10.1.1.1", "198.51.100.9", 0)).toBe("10.1.1.1");
    expect(clientAddress("10.1.1.1", "203.0.113.5, 198.51.100.9", 1)).toBe("198.51.100.9");
    expect(clientAddress("10.1.1.1", "203.0.113.5, 198.51.100.9", 2)).toBe("203.0.113.5");
    expect(clientAddress("10.1.1.1", "198.51.100.9", 2)).toBe("10.1.1.1");
    expect(clientAddress("10.1.1.1", "not-an-ip", 1)).toBe("10.1.1.1");
    expect(clientAddress("10.1.1.1", undefined, 1)).toBe("10.1.1.1");
  });
});

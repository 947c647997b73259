// Tokens: 256 bits, one spelling each, and a record name Kubernetes accepts.
import { describe, expect, it } from "vitest";
import {
  invitationLink,
  invitationRecordName,
  isWellFormedToken,
  newInvitationToken,
  tokenHash,
} from "./token.ts";

describe("invitation tokens", () => {
  it("are 43 base64url characters of 32 random bytes, all different", () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => newInvitationToken()));
    expect(tokens.size).toBe(1000);
    for (const token of tokens) {
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(token, "base64url")).toHaveLength(32);
      expect(isWellFormedToken(token)).toBe(true);
    }
  });

  it("refuse other shapes, and a second spelling of the same bytes", () => {
    const token = newInvitationToken(() => Buffer.alloc(32, 0));
    expect(token).toBe("A".repeat(43));
    expect(isWellFormedToken("A".repeat(42) + "B")).toBe(false); // non-zero padding bits
    for (const bad of [
      "",
      "A".repeat(42),
      "A".repeat(44),
      `${"A".repeat(42)}=`,
      `${"A".repeat(42)}+`,
      "../etc/passwd",
    ])
      expect(isWellFormedToken(bad)).toBe(false);
  });

  it("name their record by the full SHA-256, a valid ConfigMap name", () => {
    const token = newInvitationToken();
    const name = invitationRecordName(token);
    expect(name).toBe(`devicepass-invitation-${tokenHash(token)}`);
    expect(name.length).toBeLessThanOrEqual(253);
    expect(name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(tokenHash("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("make links under the portal's base URL", () => {
    expect(invitationLink("https://portal.example.com/", "T")).toBe("https://portal.example.com/i/T");
  });
});

import { describe, expect, it } from "vitest";
import { StringInterner } from "./intern.ts";

/** Two equal strings made apart, so that only interning can make them one. */
const fresh = (text: string) => Buffer.from(text).toString();

describe("StringInterner", () => {
  it("gives equal short strings in nested objects and arrays one instance, in place", () => {
    const interner = new StringInterner();
    const a = { kind: fresh("MailDevice"), list: [fresh("imap")], deep: { reason: fresh("Ready") } };
    const b = { kind: fresh("MailDevice"), list: [fresh("imap")], deep: { reason: fresh("Ready") } };
    expect(interner.strings(a)).toBe(a);
    interner.strings(b);
    expect(b).toEqual(a);
    expect(interner.string(fresh("MailDevice"))).toBe(a.kind); // the table's own instance
  });

  it("leaves long strings alone and starts over when full, so the table stays bounded", () => {
    const interner = new StringInterner(2);
    const long = "x".repeat(65);
    expect(interner.string(long)).toBe(long);
    const first = interner.string(fresh("one"));
    interner.string(fresh("two"));
    interner.string(fresh("three")); // full: starts over
    expect(interner.string(fresh("one"))).toBe("one");
    expect(first).toBe("one");
  });
});

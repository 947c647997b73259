// Ownership of a mail address between namespaces: first admitted claim wins and keeps it, unless
// a MailDomain reservation says otherwise; a released record lapses after its grace period.
import { describe, expect, it } from "vitest";
import { address, domain } from "./fixtures.test-support.ts";
import { domainAdmits } from "./domain.ts";
import {
  addressStanding,
  claimSummary,
  globMatches,
  nextOwnership,
  noDomainRules,
  oldestClaim,
  reservedNamespace,
  type DomainRules,
  type OwnershipRecord,
} from "./ownership.ts";

const hour = 3_600_000;
const at = (iso: string) => new Date(iso);
const input = (over: Partial<Parameters<typeof nextOwnership>[0]> = {}) => ({
  address: "x@example.com",
  record: undefined,
  admittedNamespaces: new Set<string>(),
  oldestAdmitted: undefined,
  reserved: undefined,
  now: at("2026-01-01T12:00:00Z"),
  graceMs: hour,
  ...over,
});

describe("nextOwnership", () => {
  it("gives an unowned address to the oldest admitted claim, from now", () => {
    expect(nextOwnership(input({ admittedNamespaces: new Set(["a", "b"]), oldestAdmitted: "b" }))).toEqual({
      address: "x@example.com",
      namespace: "b",
      since: "2026-01-01T12:00:00Z",
    });
    expect(nextOwnership(input())).toBeUndefined();
  });

  it("keeps the owner when an older claim elsewhere is admitted later", () => {
    const record: OwnershipRecord = {
      address: "x@example.com",
      namespace: "a",
      since: "2026-01-01T10:00:00Z",
    };
    const next = nextOwnership(
      input({ record, admittedNamespaces: new Set(["a", "b"]), oldestAdmitted: "b" }),
    );
    expect(next).toEqual(record);
  });

  it("keeps a released address for its namespace through the grace period (a GitOps re-creation)", () => {
    const record: OwnershipRecord = {
      address: "x@example.com",
      namespace: "a",
      since: "2026-01-01T10:00:00Z",
    };
    const released = nextOwnership(
      input({ record, admittedNamespaces: new Set(["b"]), oldestAdmitted: "b" }),
    );
    expect(released).toEqual({ ...record, releasedAt: "2026-01-01T12:00:00Z" });
    const later = nextOwnership(
      input({
        record: released,
        admittedNamespaces: new Set(["b"]),
        oldestAdmitted: "b",
        now: at("2026-01-01T12:59:00Z"),
      }),
    );
    expect(later).toEqual(released);
    const recreated = nextOwnership(
      input({
        record: released,
        admittedNamespaces: new Set(["a", "b"]),
        oldestAdmitted: "b",
        now: at("2026-01-01T12:30:00Z"),
      }),
    );
    expect(recreated).toEqual(record);
  });

  it("hands a released address on once its grace period is over", () => {
    const released: OwnershipRecord = {
      address: "x@example.com",
      namespace: "a",
      since: "2026-01-01T10:00:00Z",
      releasedAt: "2026-01-01T11:00:00Z",
    };
    expect(
      nextOwnership(input({ record: released, admittedNamespaces: new Set(["b"]), oldestAdmitted: "b" })),
    ).toEqual({
      address: "x@example.com",
      namespace: "b",
      since: "2026-01-01T12:00:00Z",
    });
    expect(nextOwnership(input({ record: released }))).toBeUndefined();
  });

  it("follows a reservation whoever claimed first", () => {
    const record: OwnershipRecord = {
      address: "x@example.com",
      namespace: "a",
      since: "2026-01-01T10:00:00Z",
    };
    expect(
      nextOwnership(
        input({ record, reserved: "b", admittedNamespaces: new Set(["a", "b"]), oldestAdmitted: "a" }),
      ),
    ).toEqual({ address: "x@example.com", namespace: "b", since: "2026-01-01T12:00:00Z" });
    // Reserved for a namespace without a claim yet: nobody else gets it.
    expect(
      nextOwnership(input({ reserved: "b", admittedNamespaces: new Set(["a"]), oldestAdmitted: "a" })),
    ).toMatchObject({
      namespace: "b",
      releasedAt: "2026-01-01T12:00:00Z",
    });
  });
});

describe("reservations", () => {
  it("matches local parts with * and ?", () => {
    expect(globMatches("ceo", "ceo")).toBe(true);
    expect(globMatches("sales-*", "sales-emea")).toBe(true);
    expect(globMatches("sales-*", "sale-emea")).toBe(false);
    expect(globMatches("a?c", "abc")).toBe(true);
    expect(globMatches("a.c", "abc")).toBe(false); // a dot is a dot
  });

  it("takes the first matching reservation of the domain", () => {
    const d = domain("example.com", {
      reservations: [
        { namespace: "exec", localParts: ["ceo", "cfo"] },
        { namespace: "sales", localParts: ["*"] },
      ],
    });
    expect(reservedNamespace(d, "CEO@example.com")).toBe("exec");
    expect(reservedNamespace(d, "bob@example.com")).toBe("sales");
    expect(reservedNamespace(undefined, "bob@example.com")).toBeUndefined();
  });
});

describe("addressStanding", () => {
  const fits = () => true;
  const one = address("a", "x@example.com", { namespace: "one", created: "2026-01-01T00:00:00Z" });
  const two = address("b", "X@Example.com", { namespace: "two", created: "2025-12-01T00:00:00Z" });
  const ownedByOne: OwnershipRecord = {
    address: "x@example.com",
    namespace: "one",
    since: "2026-01-01T00:00:01Z",
  };

  it("issues for the owner's claim, with the mail address lower-case", () => {
    expect(addressStanding(one, [one, two], ownedByOne, fits)).toMatchObject({
      state: "Issuing",
      mailAddress: "x@example.com",
    });
  });

  it("refuses an older claim of another namespace without naming the owner", () => {
    const standing = addressStanding(two, [one, two], ownedByOne, fits);
    expect(standing).toMatchObject({ state: "Conflict", reserved: false });
    expect(JSON.stringify(standing)).not.toContain('"one"');
  });

  it("lets the older of two claims in the owner's namespace win", () => {
    const dup = address("c", "x@example.com", { namespace: "one", created: "2026-01-02T00:00:00Z" });
    expect(addressStanding(dup, [one, dup], ownedByOne, fits)).toMatchObject({
      state: "Duplicate",
      winner: one,
    });
  });

  it("reports a missing, a deleting, an unservable and a too long address", () => {
    expect(addressStanding(undefined, [], ownedByOne, fits)).toEqual({ state: "NotFound" });
    const deleting = address("d", "x@example.com", { deleting: true });
    expect(addressStanding(deleting, [deleting], ownedByOne, fits).state).toBe("Deleting");
    expect(addressStanding(one, [one], ownedByOne, () => false).state).toBe("Unsupported");
    const wildcard = address("w", "*@example.com", { namespace: "one" });
    expect(addressStanding(wildcard, [wildcard], ownedByOne, fits).state).toBe("Unsupported");
  });

  describe("with MailDomains", () => {
    const rules = (required: boolean, ...domains: ReturnType<typeof domain>[]): DomainRules => ({
      required,
      domain: (name) => domains.find((d) => d.metadata.name === name),
      admits: (d, namespace) => domainAdmits(d, namespace, {}),
    });

    it("needs a MailDomain when required, and not otherwise", () => {
      expect(addressStanding(one, [one], ownedByOne, fits, rules(true))).toMatchObject({
        state: "DomainNotFound",
        domainName: "example.com",
      });
      expect(addressStanding(one, [one], ownedByOne, fits, rules(false)).state).toBe("Issuing");
      expect(addressStanding(one, [one], ownedByOne, fits, noDomainRules).state).toBe("Issuing");
    });

    it("applies an existing MailDomain even when not required", () => {
      const onlyTwo = domain("example.com", { namespaces: ["two"] });
      expect(addressStanding(one, [one], ownedByOne, fits, rules(false, onlyTwo)).state).toBe(
        "NamespaceNotAllowed",
      );
    });

    it("counts only admitted, live claims for ownership", () => {
      const onlyOne = rules(true, domain("example.com", { namespaces: ["one"] }));
      expect(claimSummary([one, two], onlyOne)).toEqual({
        admittedNamespaces: new Set(["one"]),
        oldestAdmitted: "one",
      });
      const gone = address("a", "x@example.com", { namespace: "one", deleting: true });
      expect(claimSummary([gone, two], onlyOne).admittedNamespaces.size).toBe(0);
    });

    it("says a reserved address is reserved, without naming the namespace", () => {
      const d = domain("example.com", { reservations: [{ namespace: "one", localParts: ["x"] }] });
      const standing = addressStanding(
        two,
        [one, two],
        ownedByOne,
        fits,
        rules(true, { ...d, spec: { ...d.spec, namespaces: ["one", "two"] } }),
      );
      expect(standing).toMatchObject({ state: "Conflict", reserved: true });
    });
  });
});

describe("the same-second tie that made 'narrowing its namespaces' flaky", () => {
  it("is decided by the name only among claims that reach ownership at the same moment", () => {
    // Two claims created within one second: the timestamp cannot tell them apart, so the winner
    // was whichever namespace name sorted first, however the test named them. Ownership is now
    // taken at admission and kept, so a later tie among timestamps no longer moves it.
    const a = address("alice", "x@example.com", { namespace: "team-9a", created: "2026-01-01T00:00:00Z" });
    const b = address("ceo", "x@example.com", { namespace: "team-2-5f", created: "2026-01-01T00:00:00Z" });
    expect(oldestClaim([a, b])).toBe(b); // "team-2-5f/ceo" < "team-9a/alice"
    const owned: OwnershipRecord = {
      address: "x@example.com",
      namespace: "team-9a",
      since: "2026-01-01T00:00:02Z",
    };
    expect(
      nextOwnership(
        input({
          record: owned,
          admittedNamespaces: new Set(["team-9a", "team-2-5f"]),
          oldestAdmitted: "team-2-5f",
        }),
      ),
    ).toEqual(owned);
  });
});

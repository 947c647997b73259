import { describe, expect, it } from "vitest";
import {
  addressStanding,
  claimWinner,
  domainVerdict,
  noDomainRules,
  type DomainRules,
} from "./address-claims.ts";
import { address, domain } from "./fixtures.test-support.ts";
import { domainAdmits } from "./domain.ts";

const older = address("a", "x@example.com", { namespace: "one", created: "2026-01-01T00:00:00Z" });
const newer = address("b", "X@Example.com", { namespace: "two", created: "2026-01-01T00:00:05Z" });
const sameSecond = address("c", "x@example.com", { namespace: "aaa", created: "2026-01-01T00:00:00Z" });

describe("claimWinner", () => {
  it("is the oldest claim, whatever the order", () => {
    expect(claimWinner([newer, older])).toBe(older);
    expect(claimWinner([older, newer])).toBe(older);
  });

  it("breaks a tie within a second by namespace/name", () => {
    expect(claimWinner([older, sameSecond])).toBe(sameSecond);
  });
});

describe("addressStanding", () => {
  const fits = () => true;
  it("issues for the winner, with the mail address lower-case", () => {
    expect(addressStanding(older, [older, newer], fits)).toMatchObject({
      state: "Issuing",
      mailAddress: "x@example.com",
    });
  });

  it("reports the newer claim as a conflict naming the winner", () => {
    expect(addressStanding(newer, [older, newer], fits)).toMatchObject({ state: "Conflict", winner: older });
  });

  it("reports a missing, a deleting and a too long address", () => {
    expect(addressStanding(undefined, [], fits)).toEqual({ state: "NotFound" });
    const deleting = address("d", "x@example.com", { deleting: true });
    expect(addressStanding(deleting, [deleting], fits).state).toBe("Deleting");
    expect(addressStanding(older, [older], () => false).state).toBe("Unsupported");
  });

  describe("with MailDomains", () => {
    const rules = (required: boolean, ...domains: ReturnType<typeof domain>[]): DomainRules => ({
      required,
      domain: (name) => domains.find((d) => d.metadata.name === name),
      admits: (d, namespace) => domainAdmits(d, namespace, {}),
    });

    it("needs a MailDomain when required, and not otherwise", () => {
      expect(addressStanding(older, [older], fits, rules(true))).toMatchObject({
        state: "DomainNotFound",
        domainName: "example.com",
      });
      expect(addressStanding(older, [older], fits, rules(false)).state).toBe("Issuing");
      expect(addressStanding(older, [older], fits, noDomainRules).state).toBe("Issuing");
    });

    it("applies an existing MailDomain even when not required", () => {
      const onlyTwo = domain("example.com", { namespaces: ["two"] });
      expect(addressStanding(older, [older], fits, rules(false, onlyTwo)).state).toBe("NamespaceNotAllowed");
    });

    it("lets an admitted newer claim win over an older claim the domain does not admit", () => {
      const onlyTwo = rules(true, domain("example.com", { namespaces: ["two"] }));
      expect(addressStanding(newer, [older, newer], fits, onlyTwo)).toMatchObject({ state: "Issuing" });
      expect(domainVerdict(older, onlyTwo).ok).toBe(false);
    });

    it("hands the domain to the standing, for its settings and policy", () => {
      const d = domain("example.com", { namespaces: ["one"] });
      expect(addressStanding(older, [older], fits, rules(true, d))).toMatchObject({
        state: "Issuing",
        domain: d,
      });
    });
  });
});

// The pages: hostile names are escaped, the button is the first form and a plain POST, nothing
// is inline script, and every state has its own page in both languages.
import { describe, expect, it } from "vitest";
import { languages } from "../invitations/messages.ts";
import { invitationPage, phoneSetupPage, revealedPage, statusPage, type StatusPageKind } from "./pages.ts";
import { invitation } from "./fixtures.test-support.ts";

const hostile = {
  ...invitation,
  displayName: `<script>alert(1)</script>"'`,
  invitedBy: "<img src=x onerror=alert(1)>",
};

describe("the portal's pages", () => {
  for (const language of languages) {
    it(`escape what the invitation holds, and hold no inline script or style (${language})`, () => {
      const pages = [
        invitationPage(language, hostile, "/i/T", "C".repeat(43)),
        revealedPage(language, hostile, "p<w>d", {
          phoneUrl: "https://portal.test/i/T/setup/K",
          profilePath: "/i/T/profile/K",
          minutes: 10,
        }),
        phoneSetupPage(language, hostile, "p<w>d", "/i/T/profile/K", 10),
      ];
      for (const html of pages) {
        expect(html).not.toContain("<script>alert");
        expect(html).not.toContain("<img src=x");
        expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;");
        expect(html.match(/<script\b[^>]*>/g) ?? []).toEqual(
          html.includes("portal.js") ? ['<script src="/static/portal.js" defer>'] : [],
        );
        expect(html).not.toMatch(/<[^>]*\son[a-z]+=/i);
        expect(html).not.toMatch(/<style|style=/);
        expect(html).toContain(`<html lang="${language}">`);
      }
      expect(pages[1]).toContain('<output id="password" class="password">p&lt;w&gt;d</output>');
    });

    it(`put the button in the page's first and only form, a POST with the CSRF value (${language})`, () => {
      const html = invitationPage(language, invitation, "/i/T", "C".repeat(43));
      const forms = html.match(/<form\b[^>]*>/g) ?? [];
      expect(forms).toEqual(['<form method="post" action="/i/T">']);
      expect(html).toContain(`<input type="hidden" name="csrf" value="${"C".repeat(43)}">`);
      expect(html).toMatch(/<button type="submit" class="primary">[^<]+<\/button>\s*<\/form>/);
      expect(html).toContain("alice@example.com");
      expect(html).toContain("admin");
    });

    it(`have a page for each state that gives nothing (${language})`, () => {
      const kinds: StatusPageKind[] = [
        "used",
        "expired",
        "revoked",
        "unknown",
        "rateLimited",
        "setupExpired",
        "formExpired",
        "unavailable",
        "notFound",
        "method",
        "tooLarge",
      ];
      const headings = new Set<string>();
      for (const kind of kinds) {
        const html = statusPage(language, kind, {
          redeemedAt: "2026-12-01T10:00:00Z",
          expiresAt: "2026-12-01T10:00:00Z",
        });
        expect(html).toContain(`data-status="${kind}"`);
        expect(html).not.toMatch(/\{[a-zA-Z]+\}/);
        expect(html).not.toContain("<form");
        headings.add(/<h1>([^<]+)<\/h1>/.exec(html)![1]!);
      }
      expect(headings.size).toBe(kinds.length);
    });
  }
});

// The message catalogue: every language has every message with the same placeholders, and the
// language follows Accept-Language.
import { describe, expect, it } from "vitest";
import { catalogue, chooseLanguage, formatDate, languages, message, placeholders } from "./messages.ts";

describe("the message catalogue", () => {
  it("has every key in every language, non-empty, with the same placeholders", () => {
    const keys = Object.keys(catalogue.en).sort();
    for (const language of languages) {
      expect(Object.keys(catalogue[language]).sort(), language).toEqual(keys);
      for (const key of keys) {
        const text = catalogue[language][key as keyof typeof catalogue.en];
        expect(text.trim(), `${language}.${key}`).not.toBe("");
        expect(placeholders(text), `${language}.${key}`).toEqual(
          placeholders(catalogue.en[key as keyof typeof catalogue.en]),
        );
      }
    }
  });

  it("really is translated: Spanish differs from English except for names", () => {
    const same = Object.keys(catalogue.en).filter(
      (k) => catalogue.es[k as keyof typeof catalogue.en] === catalogue.en[k as keyof typeof catalogue.en],
    );
    expect(same).toEqual(["siteName"]);
  });

  it("fills placeholders", () => {
    expect(message("es", "expiredBody", { expiresAt: "hoy" })).toBe(
      "La invitación caducó el hoy. Pida una nueva a la persona que le invitó.",
    );
  });

  it.each([
    [undefined, "en"],
    ["", "en"],
    ["es-ES,es;q=0.9,en;q=0.8", "es"],
    ["en-US,en;q=0.9,es;q=0.8", "en"],
    ["fr-FR,fr;q=0.9,es;q=0.5,en;q=0.4", "es"],
    ["de-DE", "en"],
    ["es;q=0, en", "en"],
    ["*", "en"],
    ["ES-mx", "es"],
    ["en;q=0.5, es;q=0.5", "en"],
  ])("chooses for Accept-Language %j: %s", (header, expected) => {
    expect(chooseLanguage(header)).toBe(expected);
  });

  it("formats dates in UTC for each language", () => {
    expect(formatDate("en", "2026-12-31T18:30:00Z")).toBe("31 December 2026 at 18:30 UTC");
    expect(formatDate("es", "2026-12-31T18:30:00Z")).toBe("31 de diciembre de 2026 a las 18:30 UTC");
  });
});

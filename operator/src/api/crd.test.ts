import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { crdFiles, mailAddressCrd, mailDeviceCrd, mailDomainCrd } from "./crd.ts";

const root = join(import.meta.dirname, "..", "..", "..");

describe("generated CRDs", () => {
  it("crds/ matches the zod schemas (run `npm run generate` after changing them)", async () => {
    for (const [name, text] of Object.entries(crdFiles())) {
      expect(await readFile(join(root, "crds", name), "utf8"), `crds/${name} drifted`).toBe(text);
    }
  });

  it("describes every field, as kubectl explain shows it", () => {
    const missing: string[] = [];
    const walk = (node: Record<string, unknown>, path: string) => {
      const properties = node.properties as Record<string, Record<string, unknown>> | undefined;
      for (const [name, child] of Object.entries(properties ?? {})) {
        const childPath = `${path}.${name}`;
        if (typeof child.description !== "string") missing.push(childPath);
        walk(child, childPath);
        const items = child.items as Record<string, unknown> | undefined;
        if (items?.properties) walk(items, `${childPath}[]`);
      }
    };
    for (const crd of [mailAddressCrd, mailDeviceCrd, mailDomainCrd]) {
      const spec = crd.spec as {
        names: { kind: string };
        versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[];
      };
      const root = spec.versions[0]!.schema.openAPIV3Schema;
      for (const top of ["spec", "status"]) {
        walk((root.properties as Record<string, Record<string, unknown>>)[top]!, `${spec.names.kind}.${top}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("has no additionalProperties: false, which structural schemas forbid", () => {
    expect(Object.values(crdFiles()).join("\n")).not.toContain("additionalProperties: false");
  });
});

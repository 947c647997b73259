// Writes every generated file of the repository (crds/ for now) from its TypeScript source.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { crdFiles } from "../src/api/crd.ts";

const root = join(import.meta.dirname, "..", "..");
await mkdir(join(root, "crds"), { recursive: true });
for (const [name, text] of Object.entries(crdFiles())) {
  await writeFile(join(root, "crds", name), text);
  console.log(`wrote crds/${name}`);
}

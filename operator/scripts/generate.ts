// Writes every generated file of the repository from its TypeScript source: crds/ from the zod
// schemas, and charts/ (the Helm chart and the plain install manifest) from operator/src/install/.
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { crdFiles } from "../src/api/crd.ts";
import { chartFiles, chartName, readDovecotFiles } from "../src/install/chart.ts";

const root = join(import.meta.dirname, "..", "..");

async function writeAll(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), text);
    console.log(`wrote ${join(dir, name).slice(root.length + 1)}`);
  }
}

await writeAll(join(root, "crds"), crdFiles());

// The chart is written afresh, so that a template no longer generated does not linger.
const charts = join(root, "charts");
await rm(join(charts, chartName), { recursive: true, force: true });
for (const entry of await readdir(charts).catch(() => []))
  if (entry === ".gitkeep") await rm(join(charts, entry));
await writeAll(charts, chartFiles(readDovecotFiles(root)));

// Helpers for the install tests: helm against the shared control plane, a ServiceAccount's
// kubeconfig from `kubectl create token`, and a semantic comparison of manifests.
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { inject } from "vitest";
import { resolveBinaries } from "../harness/binaries.ts";
import { writeServiceAccountKubeconfig, type Kubectl, type KubectlResult } from "../harness/kubectl.ts";

export const repoRoot = join(import.meta.dirname, "..", "..");
export const chartDir = join(repoRoot, "charts", "devicepass");

export interface Helm {
  run(args: string[]): Promise<KubectlResult>;
  ok(args: string[]): Promise<string>;
}

/** The pinned helm, with its own cache and config folders so that runs never share state. */
export async function helmFor(kubeconfig: string = inject("kubeconfig")): Promise<Helm> {
  const binary = (await resolveBinaries()).helm;
  const home = await mkdtemp(join(tmpdir(), "devicepass-helm-"));
  const env = {
    ...process.env,
    KUBECONFIG: kubeconfig,
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_DATA_HOME: join(home, "data"),
  };
  const run = (args: string[]) =>
    new Promise<KubectlResult>((resolve) => {
      execFile(
        binary,
        args,
        { env, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
        (error, stdout, stderr) => {
          resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
        },
      );
    });
  const ok = async (args: string[]) => {
    const result = await run(args);
    if (result.code !== 0)
      throw new Error(`helm ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
    return result.stdout;
  };
  return { run, ok };
}

/** Writes values to a file for `helm … -f`. */
export async function valuesFile(values: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "devicepass-values-"));
  const path = join(dir, "values.yaml");
  await writeFile(path, stringify(values));
  return path;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/**
 * What an object means to the API server, for comparing two renderings: Helm's own labels go,
 * and so do empty and null fields (the API server treats them as absent), sorted by identity.
 */
export function normalized(objects: K8sObject[]): K8sObject[] {
  const clean = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(clean);
    if (node === null || typeof node !== "object") return node;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      const c = clean(v);
      if (c === null || c === undefined) continue;
      if (Array.isArray(c) && c.length === 0) continue;
      if (typeof c === "object" && !Array.isArray(c) && Object.keys(c).length === 0) continue;
      out[k] = c;
    }
    return out;
  };
  const key = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
  return objects
    .map((o) => {
      const labels = { ...o.metadata.labels };
      delete labels["helm.sh/chart"];
      if (labels["app.kubernetes.io/managed-by"] === "Helm") delete labels["app.kubernetes.io/managed-by"];
      return clean({ ...o, metadata: { ...o.metadata, labels } }) as K8sObject;
    })
    .sort((a, b) => (key(a) < key(b) ? -1 : 1));
}

/** A kubeconfig that authenticates with a token of `serviceAccount`, as the operator's pod would. */
export async function serviceAccountKubeconfig(
  kubectl: Kubectl,
  namespace: string,
  serviceAccount: string,
): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), "devicepass-sa-")), "kubeconfig");
  await writeServiceAccountKubeconfig(
    kubectl,
    inject("kubeconfig"),
    { namespace, name: serviceAccount },
    path,
  );
  return path;
}

/** `kubectl auth can-i` as someone else (the admin impersonates): true for yes. */
export async function canI(kubectl: Kubectl, as: string, args: string[]): Promise<boolean> {
  const result = await kubectl.run(["auth", "can-i", ...args, `--as=${as}`]);
  if (result.code !== 0 && result.stdout.trim() !== "no") throw new Error(`can-i failed: ${result.stderr}`);
  return result.stdout.trim() === "yes";
}

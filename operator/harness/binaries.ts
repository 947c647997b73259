// Finds the control-plane binaries: KUBEBUILDER_ASSETS first (envtest's convention), else the
// project's pinned build from the Go module proxy, cached outside the clone.
import { execFile } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

export const binaryNames = ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm"] as const;
export type BinaryName = (typeof binaryNames)[number];
export type Binaries = Record<BinaryName, string>;

const buildScript = join(dirname(fileURLToPath(import.meta.url)), "build-control-plane.sh");

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

let built: Promise<string> | undefined;

/** Runs the pinned build (a no-op when the cache already holds it) and returns its folder. */
export function buildControlPlane(): Promise<string> {
  built ??= run("bash", [buildScript], { maxBuffer: 64 * 1024 * 1024, timeout: 60 * 60_000 }).then(
    ({ stdout }) => stdout.trim().split("\n").at(-1) ?? "",
  );
  return built;
}

/** A Kubernetes binary's own version (`kube-apiserver --version` prints `Kubernetes v1.37.2`). */
export async function binaryVersion(binary: string): Promise<{ gitVersion: string; minor: number }> {
  const { stdout } = await run(binary, ["--version"]);
  const match = /v1\.(\d+)\.\d+\S*/.exec(stdout);
  if (!match) throw new Error(`${binary} --version printed no Kubernetes version: ${stdout}`);
  return { gitVersion: match[0], minor: Number(match[1]) };
}

/**
 * Every binary from KUBEBUILDER_ASSETS when it holds it; whatever is missing there (envtest's
 * assets lack kube-controller-manager and helm) comes from the project's pinned build.
 */
export async function resolveBinaries(env: NodeJS.ProcessEnv = process.env): Promise<Binaries> {
  const assets = env.KUBEBUILDER_ASSETS;
  const found: Partial<Binaries> = {};
  if (assets) {
    for (const name of binaryNames) {
      const path = join(assets, name);
      if (await isExecutable(path)) found[name] = path;
    }
  }
  const missing = binaryNames.filter((name) => !found[name]);
  if (missing.length > 0) {
    const dir = await buildControlPlane();
    for (const name of missing) found[name] = join(dir, name);
  }
  return found as Binaries;
}

/** What a harness node runs beside Debian's containerd and runc (operator/harness/node.ts). */
export const nodeBinaryNames = ["kubelet", "kube-proxy", "kube-scheduler"] as const;
export type NodeBinaryName = (typeof nodeBinaryNames)[number];
export type NodeBinaries = Record<NodeBinaryName, string>;

let builtNode: Promise<string> | undefined;

/** Runs `build-control-plane.sh node` (a no-op when cached) and returns its folder. */
function buildNodeBinaries(): Promise<string> {
  builtNode ??= run("bash", [buildScript, "node"], {
    maxBuffer: 64 * 1024 * 1024,
    timeout: 60 * 60_000,
  }).then(({ stdout }) => stdout.trim().split("\n").at(-1) ?? "");
  return builtNode;
}

/**
 * kubelet, kube-proxy and kube-scheduler of the control plane's Kubernetes version, from
 * `build-control-plane.sh node`; DEVICEPASS_NODE_BINARIES, when set, names a folder to use instead.
 */
export async function resolveNodeBinaries(env: NodeJS.ProcessEnv = process.env): Promise<NodeBinaries> {
  const dir = env.DEVICEPASS_NODE_BINARIES || (await buildNodeBinaries());
  const found = {} as NodeBinaries;
  for (const name of nodeBinaryNames) {
    const path = join(dir, name);
    if (!(await isExecutable(path)))
      throw new Error(`${path} is missing: build-control-plane.sh node builds ${nodeBinaryNames.join(", ")}`);
    found[name] = path;
  }
  return found;
}

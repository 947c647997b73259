// Helpers for the tests on a real node: a cluster per test file, restricted namespaces, and what
// the pods of a namespace went through when a check fails (harness/node-diagnostics.ts; Dovecot's
// pods: harness/node-dovecot.ts).
import { join } from "node:path";
import { NodeCluster, type NodeClusterOptions } from "../../harness/node.ts";
import type { Kubectl } from "../../harness/kubectl.ts";
import type { PodList } from "../../harness/node-diagnostics.ts";
import { exampleDomainLabel } from "../support.ts";

export const repoRoot = join(import.meta.dirname, "..", "..", "..");
export const crdsDir = join(repoRoot, "crds");

/** Starts a control plane and a node, installs the CRDs, and logs progress with the file's name. */
export async function startCluster(tag: string, options: NodeClusterOptions = {}): Promise<NodeCluster> {
  const log = (line: string) => console.log(`[${tag}] ${line}`);
  const cluster = await NodeCluster.start({ log, ...options });
  await cluster.kubectl.ok(["apply", "--server-side", "-f", crdsDir]);
  await cluster.kubectl.ok(["wait", "--for=condition=Established", "--timeout=60s", "-f", crdsDir]);
  log(
    `cluster ready: images ${cluster.timings.imagesMs} ms, control plane ${cluster.timings.controlPlaneMs} ms, node ${cluster.timings.nodeMs} ms`,
  );
  return cluster;
}

/** A namespace where Pod Security `restricted` is enforced (and example.com addresses are admitted). */
export async function restrictedNamespace(kubectl: Kubectl, name: string): Promise<void> {
  await kubectl.ok(["create", "namespace", name]);
  await kubectl.ok([
    "label", "namespace", name, exampleDomainLabel,
    "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest",
  ]); // prettier-ignore
}

/** The pods of `selector`, with their IP and whether they are Ready. */
export async function pods(kubectl: Kubectl, namespace: string, selector: string) {
  const list = await kubectl.json<PodList>(["get", "pods", "-n", namespace, "-l", selector]);
  return list.items.map((pod) => ({
    name: pod.metadata.name,
    ip: pod.status.podIP,
    terminating: pod.metadata.deletionTimestamp !== undefined,
    ready: pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true,
    restarts: (pod.status.containerStatuses ?? []).reduce((sum, c) => sum + c.restartCount, 0),
  }));
}

export { describePods, explained } from "../../harness/node-diagnostics.ts";

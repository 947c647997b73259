// Helpers for the tests on a real node: a cluster per test file, restricted namespaces, and what
// the pods of a namespace went through when a check fails (Dovecot's pods: harness/node-dovecot.ts).
import { join } from "node:path";
import { NodeCluster, type NodeClusterOptions } from "../../harness/node.ts";
import type { Kubectl } from "../../harness/kubectl.ts";
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

interface PodList {
  items: {
    metadata: { name: string; deletionTimestamp?: string };
    status: {
      podIP?: string;
      phase?: string;
      conditions?: { type: string; status: string }[];
      containerStatuses?: { restartCount: number }[];
    };
  }[];
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

/** What went wrong with the pods of a namespace: their state, events and logs. */
export async function describePods(kubectl: Kubectl, namespace: string): Promise<string> {
  const parts = [
    (await kubectl.run(["get", "pods", "-n", namespace, "-o", "wide"])).stdout,
    (await kubectl.run(["get", "events", "-n", namespace, "--sort-by=.lastTimestamp"])).stdout,
  ];
  for (const pod of (await kubectl.json<PodList>(["get", "pods", "-n", namespace])).items)
    parts.push(`--- logs of ${pod.metadata.name}\n${(await kubectl.run(["logs", pod.metadata.name, "-n", namespace, "--all-containers", "--tail=30"])).stdout}`); // prettier-ignore
  return parts.join("\n");
}

/** Runs `check`; when it fails, the error carries the pods' state, events and logs, and the node's logs. */
export async function explained<T>(
  cluster: NodeCluster,
  namespaces: string | string[],
  check: () => Promise<T>,
): Promise<T> {
  try {
    return await check();
  } catch (error) {
    const pods: string[] = [];
    for (const namespace of [namespaces].flat()) pods.push(await describePods(cluster.kubectl, namespace));
    const details = `${pods.join("\n")}\n${await cluster.logs(20)}`;
    throw new Error(`${(error as Error).message}\n${details}`, { cause: error });
  }
}

// What the pods of a node's namespaces went through, for the error of a check that failed on a
// harness node (node.ts): their state, events and logs, and the node's own logs.
import type { Kubectl } from "./kubectl.ts";
import type { NodeCluster } from "./node.ts";

export interface PodList {
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

// Runs the real kubectl the way a user types it, against a given kubeconfig.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { parse, stringify } from "yaml";

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Kubectl {
  /** Resolves with the exit code and output; never throws for a non-zero exit. */
  run(args: string[], input?: string): Promise<KubectlResult>;
  /** Resolves with stdout; throws with stderr when kubectl fails. */
  ok(args: string[], input?: string): Promise<string>;
  /** Parsed `-o json` output. */
  json<T = unknown>(args: string[]): Promise<T>;
}

/** How long a kubectl command may run: its own `--timeout=` (`300s`, `5m`) plus a margin, else 2 min. */
function processTimeoutMs(args: string[]): number {
  const flag = args
    .map((a) => /^--timeout=(?:(\d+)m)?(?:(\d+)s)?$/.exec(a))
    .find((m) => m && m[0] !== "--timeout=");
  if (!flag) return 120_000;
  return (Number(flag[1] ?? 0) * 60 + Number(flag[2] ?? 0)) * 1000 + 30_000;
}

export function kubectlFor(kubectlPath: string, kubeconfig: string): Kubectl {
  const run = (args: string[], input?: string) =>
    new Promise<KubectlResult>((resolve) => {
      const timeout = processTimeoutMs(args);
      const child = execFile(
        kubectlPath,
        args,
        { env: { ...process.env, KUBECONFIG: kubeconfig }, maxBuffer: 64 * 1024 * 1024, timeout },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
          // Killed here, not failed by itself: say so, with what it printed last (rollout status
          // reports its progress on stdout).
          if (error?.killed)
            stderr += `\n(killed after ${timeout / 1000} s; its last output: ${stdout.trim().split("\n").slice(-3).join(" / ")})`;
          resolve({ code, stdout, stderr });
        },
      );
      if (input !== undefined) child.stdin?.end(input);
    });
  const ok = async (args: string[], input?: string) => {
    const result = await run(args, input);
    if (result.code !== 0)
      throw new Error(`kubectl ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
    return result.stdout;
  };
  const json = async <T>(args: string[]) => JSON.parse(await ok([...args, "-o", "json"])) as T;
  return { run, ok, json };
}

/**
 * Writes to `path` a kubeconfig for the cluster of `adminKubeconfig` that authenticates with a
 * token of `serviceAccount` (`kubectl create token`), as that account's pod would.
 */
export async function writeServiceAccountKubeconfig(
  kubectl: Kubectl,
  adminKubeconfig: string,
  account: { namespace: string; name: string; duration?: string },
  path: string,
): Promise<void> {
  const token =
    (await kubectl.ok([
      "create", "token", account.name, "-n", account.namespace, `--duration=${account.duration ?? "1h"}`,
    ])) // prettier-ignore
      .trim();
  const admin = parse(await readFile(adminKubeconfig, "utf8")) as {
    clusters: { name: string; cluster: Record<string, string> }[];
  };
  const user = `system:serviceaccount:${account.namespace}:${account.name}`;
  await writeFile(
    path,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: admin.clusters,
      users: [{ name: user, user: { token } }],
      contexts: [{ name: "sa", context: { cluster: admin.clusters[0]!.name, user } }],
      "current-context": "sa",
    }),
    { mode: 0o600 },
  );
}

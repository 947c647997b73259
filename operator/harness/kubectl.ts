// Runs the real kubectl the way a user types it, against a given kubeconfig.
import { execFile } from "node:child_process";

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

export function kubectlFor(kubectlPath: string, kubeconfig: string): Kubectl {
  const run = (args: string[], input?: string) =>
    new Promise<KubectlResult>((resolve) => {
      const child = execFile(
        kubectlPath,
        args,
        { env: { ...process.env, KUBECONFIG: kubeconfig }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
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

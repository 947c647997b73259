// Helpers for integration tests: a kubectl and a fresh namespace per test, and eventually().
import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { kubectlFor, type Kubectl } from "../harness/kubectl.ts";

export function adminKubectl(): Kubectl {
  return kubectlFor(inject("kubectlPath"), inject("kubeconfig"));
}

/**
 * The label examples/domain/example.com.yaml admits namespaces by. Test files share one cluster,
 * and a MailDomain applies whenever it exists (the end-to-end test applies that example), so
 * every test namespace carries it: example.com addresses behave the same with or without it.
 */
export const exampleDomainLabel = "mail.devicepass.io/domain.example.com=admitted";

/** Creates a namespace named after `prefix` for one test; deletes it when the test is done. */
export async function withNamespace(
  kubectl: Kubectl,
  prefix: string,
): Promise<{ name: string; dispose: () => Promise<void> }> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await kubectl.ok(["create", "namespace", name]);
  await kubectl.ok(["label", "namespace", name, exampleDomainLabel]);
  return {
    name,
    dispose: async () => void (await kubectl.run(["delete", "namespace", name, "--wait=false"])),
  };
}

/** Retries `check` until it stops throwing, like Gomega's Eventually; rethrows the last error. */
export async function eventually<T>(
  check: () => Promise<T>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}

/** Asserts that `check` keeps passing for `durationMs`, like Gomega's Consistently. */
export async function consistently(
  check: () => Promise<void>,
  durationMs = 2_000,
  intervalMs = 200,
): Promise<void> {
  const deadline = Date.now() + durationMs;
  while (Date.now() < deadline) {
    await check();
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

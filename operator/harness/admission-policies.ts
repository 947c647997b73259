// Installs devicepass's created-by admission policies into a running cluster, as the chart would
// (the MutatingAdmissionPolicy in the newest API version served, else none), and waits until the
// API server enforces them: policies take effect a moment after they are stored.
import { stringify } from "yaml";
import { createdByAnnotation, apiVersion, kinds } from "../src/api/names.ts";
import {
  mutatingCreatedByPolicy,
  mutatingPolicyApiVersions,
  validatingCreatedByPolicy,
  type MutatingPolicyApiVersion,
} from "../src/install/admission.ts";
import type { Kubectl } from "./kubectl.ts";

/** The newest MutatingAdmissionPolicy version the API server serves, if any. */
export async function servedMutatingPolicyVersion(
  kubectl: Kubectl,
): Promise<MutatingPolicyApiVersion | undefined> {
  for (const version of mutatingPolicyApiVersions) {
    const result = await kubectl.run(["get", "--raw", `/apis/admissionregistration.k8s.io/${version}`]);
    if (result.code !== 0) continue;
    const list = JSON.parse(result.stdout) as { resources: { name: string }[] };
    if (list.resources.some((r) => r.name === "mutatingadmissionpolicies")) return version;
  }
  return undefined;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Applies the policies under the release name `release` and returns the mutating policy's API
 * version (undefined: not served, the annotation is then only guarded). Needs the CRDs installed.
 */
export async function installCreatedByPolicies(
  kubectl: Kubectl,
  release = "devicepass",
  namespace = "default",
): Promise<MutatingPolicyApiVersion | undefined> {
  const served = await servedMutatingPolicyVersion(kubectl);
  const labels = { "app.kubernetes.io/name": "devicepass", "app.kubernetes.io/instance": release };
  const objects = [
    ...(served ? mutatingCreatedByPolicy(release, served, labels) : []),
    ...validatingCreatedByPolicy(release, labels),
  ];
  await kubectl.ok(["apply", "--server-side", "-f", "-"], objects.map((o) => stringify(o)).join("---\n"));

  // A probe device: created once the mutation acts (its annotation names us), then refused an edit
  // of the annotation once the validation acts; deleted again.
  const me = (await kubectl.json<{ status: { userInfo: { username: string } } }>(["auth", "whoami"])).status
    .userInfo.username;
  const probe = {
    apiVersion,
    kind: kinds.mailDevice.kind,
    metadata: {
      name: `${release}-admission-probe`,
      namespace,
      annotations: { [createdByAnnotation]: "probe" },
    },
    spec: { address: "admission-probe", displayName: "admission probe" },
  };
  const create = (dryRun: boolean) =>
    kubectl.run(
      ["create", ...(dryRun ? ["--dry-run=server"] : []), "-o", "json", "-f", "-"],
      stringify(probe),
    );
  const createdBy = (stdout: string) =>
    (JSON.parse(stdout) as { metadata: { annotations?: Record<string, string> } }).metadata.annotations?.[
      createdByAnnotation
    ];
  if (served) {
    await until("the MutatingAdmissionPolicy sets created-by", async () => {
      const r = await create(true);
      return r.code === 0 && createdBy(r.stdout) === me;
    });
    await kubectl.ok(["create", "-f", "-"], stringify(probe));
  } else {
    // Without the mutation, the validation refuses a created-by that names someone else.
    await until("the ValidatingAdmissionPolicy refuses a forged created-by", async () => {
      const r = await create(true);
      return r.code !== 0 && r.stderr.includes(createdByAnnotation);
    });
    await kubectl.ok(
      ["create", "-f", "-"],
      stringify({ ...probe, metadata: { ...probe.metadata, annotations: {} } }),
    );
  }
  const target = [`${kinds.mailDevice.singular}/${probe.metadata.name}`, "-n", namespace];
  try {
    await until("the ValidatingAdmissionPolicy refuses a change of created-by", async () => {
      const r = await kubectl.run([
        "annotate",
        ...target,
        "--dry-run=server",
        "--overwrite",
        `${createdByAnnotation}=x`,
      ]);
      return r.code !== 0 && r.stderr.includes(createdByAnnotation);
    });
  } finally {
    await kubectl.ok(["delete", ...target, "--wait=false"]);
  }
  return served;
}

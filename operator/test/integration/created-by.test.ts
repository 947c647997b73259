// mail.devicepass.io/created-by against the real API server, with the admission policies the
// global setup installs as the chart does: the creator as the API server saw it (users by
// impersonation, a GitOps ServiceAccount), a forged value overwritten, every later change refused,
// GitOps re-applies unharmed, and the CREATED BY column of `kubectl get maildevices`.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stringify } from "yaml";
import { createdByAnnotation, group, kinds } from "../../src/api/names.ts";
import { kubectlFor, type Kubectl } from "../../harness/kubectl.ts";
import { adminKubectl, withNamespace } from "../support.ts";
import { repoRoot, serviceAccountKubeconfig } from "../install-support.ts";

const kubectl = adminKubectl();
const examples = join(repoRoot, "examples", "mail");

interface Device {
  metadata: {
    name: string;
    annotations?: Record<string, string>;
    managedFields?: { manager: string; operation: string; fieldsV1?: unknown }[];
  };
}

let ns: { name: string; dispose: () => Promise<void> };
let files: string;

/** A MailDevice manifest, as a user would keep it in a GitOps repository. */
function deviceFile(name: string, annotations?: Record<string, string>): string {
  return stringify({
    apiVersion: `${group}/v1alpha1`,
    kind: kinds.mailDevice.kind,
    metadata: { name, ...(annotations ? { annotations } : {}) },
    spec: { address: "alice", displayName: `Device ${name}` },
  });
}

async function writeDevice(name: string, annotations?: Record<string, string>): Promise<string> {
  const path = join(files, `${name}${annotations ? "-annotated" : ""}.yaml`);
  await writeFile(path, deviceFile(name, annotations));
  return path;
}

async function device(name: string): Promise<Device> {
  return kubectl.json<Device>(["get", "maildevice", name, "-n", ns.name, "--show-managed-fields"]);
}
const createdBy = async (name: string) => (await device(name)).metadata.annotations?.[createdByAnnotation];

/** The refusal of the ValidatingAdmissionPolicy, as kubectl prints it. */
const refusal =
  /denied request: metadata\.annotations\[mail\.devicepass\.io\/created-by\] records who created this MailDevice and nobody can set, change or remove it/;

beforeAll(async () => {
  ns = await withNamespace(kubectl, "created-by");
  files = await mkdtemp(join(tmpdir(), "devicepass-created-by-"));
  // jane and bob may do everything with devices in the namespace; jane is also its admin.
  const rules = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: "mail-editor", namespace: ns.name },
    rules: [
      {
        apiGroups: [group],
        resources: [kinds.mailDevice.plural, kinds.mailAddress.plural],
        verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
      },
    ],
  };
  await kubectl.ok(["apply", "-f", "-"], stringify(rules));
  await kubectl.ok(["create", "serviceaccount", "gitops", "-n", ns.name]);
  await kubectl.ok([
    "create",
    "rolebinding",
    "mail-editors",
    "-n",
    ns.name,
    "--role=mail-editor",
    "--user=jane",
    "--user=bob",
    `--serviceaccount=${ns.name}:gitops`,
  ]);
  await kubectl.ok([
    "create",
    "rolebinding",
    "jane-admin",
    "-n",
    ns.name,
    "--clusterrole=admin",
    "--user=jane",
  ]);
});
afterAll(() => ns.dispose());

describe("mail.devicepass.io/created-by", () => {
  it("names the user that created each device, by impersonation, as kubectl --as shows", async () => {
    await kubectl.ok(["--as", "jane", "apply", "-n", ns.name, "-f", examples]);
    await kubectl.ok(["--as", "bob", "apply", "-n", ns.name, "-f", await writeDevice("bob-tablet")]);
    for (const name of ["alice-iphone", "alice-laptop-bob", "alice-printer"])
      expect(await createdBy(name)).toBe("jane");
    expect(await createdBy("bob-tablet")).toBe("bob");
    // The MailAddress is not a device: nothing is written there.
    const address = await kubectl.json<Device>(["get", "mailaddress", "alice", "-n", ns.name]);
    expect(address.metadata.annotations?.[createdByAnnotation]).toBeUndefined();
  });

  it("names a GitOps tool's ServiceAccount, and survives its server-side and client-side re-applies", async () => {
    const gitops: Kubectl = kubectlFor(
      inject("kubectlPath"),
      await serviceAccountKubeconfig(kubectl, ns.name, "gitops"),
    );
    const file = await writeDevice("gitops-phone");
    const sa = `system:serviceaccount:${ns.name}:gitops`;
    // Flux: server-side apply with its own field manager, again and again.
    for (let i = 0; i < 2; i++)
      await gitops.ok([
        "apply",
        "--server-side",
        "--field-manager=kustomize-controller",
        "-n",
        ns.name,
        "-f",
        file,
      ]);
    expect(await createdBy("gitops-phone")).toBe(sa);
    // The annotation belongs to no field manager: the mutation set it after the request's fields
    // were recorded, so an applier that drops or never had it cannot remove it.
    const owners = (await device("gitops-phone")).metadata.managedFields ?? [];
    expect(JSON.stringify(owners)).not.toContain(`f:${createdByAnnotation}`);
    // Argo CD: client-side apply of the same file (no annotation in it), twice.
    for (let i = 0; i < 2; i++) await gitops.ok(["apply", "-n", ns.name, "-f", file]);
    // A changed file (another display name) still applies, and the creator stays.
    await writeFile(file, deviceFile("gitops-phone").replace("Device gitops-phone", "Renamed phone"));
    await gitops.ok([
      "apply",
      "--server-side",
      "--field-manager=kustomize-controller",
      "-n",
      ns.name,
      "-f",
      file,
    ]);
    expect(await createdBy("gitops-phone")).toBe(sa);
    // kubectl apply --server-side of one file twice, as a person does it.
    const own = await writeDevice("jane-ssa");
    for (let i = 0; i < 2; i++)
      await kubectl.ok(["--as", "jane", "apply", "--server-side", "-n", ns.name, "-f", own]);
    expect(await createdBy("jane-ssa")).toBe("jane");
  });

  it("overwrites a forged value in the applied file with the real creator", async () => {
    const forged = await writeDevice("forged-laptop", { [createdByAnnotation]: "the-ceo" });
    await kubectl.ok(["--as", "bob", "apply", "-n", ns.name, "-f", forged]);
    expect(await createdBy("forged-laptop")).toBe("bob");
    const forgedSsa = await writeDevice("forged-ssa", { [createdByAnnotation]: "the-ceo" });
    await kubectl.ok(["--as", "bob", "apply", "--server-side", "-n", ns.name, "-f", forgedSsa]);
    expect(await createdBy("forged-ssa")).toBe("bob");
    // Applying the forged file again would change it: refused, with the reason and the real value.
    const again = await kubectl.run(["--as", "bob", "apply", "-n", ns.name, "-f", forged]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(refusal);
    expect(again.stderr).toContain("(it is bob)");
    const ssaAgain = await kubectl.run([
      "--as",
      "bob",
      "apply",
      "--server-side",
      "-n",
      ns.name,
      "-f",
      forgedSsa,
    ]);
    expect(ssaAgain.stderr).toMatch(refusal);
    // The way out the message names: the file keeps the value the API server wrote.
    await writeDevice("forged-laptop", { [createdByAnnotation]: "bob" });
    await writeDevice("forged-ssa", { [createdByAnnotation]: "bob" });
    for (let i = 0; i < 2; i++) {
      await kubectl.ok(["--as", "bob", "apply", "-n", ns.name, "-f", forged]);
      await kubectl.ok(["--as", "bob", "apply", "--server-side", "-n", ns.name, "-f", forgedSsa]);
    }
    expect(await createdBy("forged-laptop")).toBe("bob");
    expect(await createdBy("forged-ssa")).toBe("bob");
  });

  it("refuses every edit and removal, from the namespace admin and the cluster admin alike", async () => {
    const target = ["maildevice", "bob-tablet", "-n", ns.name];
    for (const as of [["--as", "jane"], []]) {
      const overwrite = await kubectl.run([
        ...as,
        "annotate",
        ...target,
        `${createdByAnnotation}=someone`,
        "--overwrite",
      ]);
      expect(overwrite.code).not.toBe(0);
      expect(overwrite.stderr).toMatch(refusal);
      const removal = await kubectl.run([...as, "annotate", ...target, `${createdByAnnotation}-`]);
      expect(removal.code).not.toBe(0);
      expect(removal.stderr).toMatch(refusal);
    }
    // A whole-object replace without the annotation is a removal too.
    const replaced = await kubectl.run(["replace", "-n", ns.name, "-f", await writeDevice("bob-tablet")]);
    expect(replaced.code).not.toBe(0);
    expect(replaced.stderr).toMatch(refusal);
    // Other annotations stay free to change.
    await kubectl.ok(["--as", "jane", "annotate", ...target, "mail.devicepass.io/rotate=1"]);
    expect(await createdBy("bob-tablet")).toBe("bob");
  });

  it("shows each creator under CREATED BY, in the device list's column order", async () => {
    const table = await kubectl.ok(["get", "maildevices", "-n", ns.name]);
    const [header, ...rows] = table.trimEnd().split("\n");
    expect(header!.split(/\s{2,}/)).toEqual([
      "NAME",
      "ADDRESS",
      "DISPLAY NAME",
      "USER",
      "CREATED BY",
      "READY",
      "LAST USED",
      "ROTATED",
      "AGE",
    ]);
    const column = header!.indexOf("CREATED BY");
    const creators: Record<string, string> = {};
    for (const row of rows)
      creators[row.split(/\s+/)[0]!] = row
        .slice(column)
        .split(/\s{2,}/)[0]!
        .trim();
    expect(creators).toMatchObject({
      "alice-iphone": "jane",
      "bob-tablet": "bob",
      "forged-laptop": "bob",
      "gitops-phone": `system:serviceaccount:${ns.name}:gitops`,
    });
  });

  it("is described where kubectl explain looks", async () => {
    const explained = await kubectl.ok(["explain", "maildevice"]);
    expect(explained.replace(/\s+/g, " ")).toContain(
      `${createdByAnnotation} - the user that created the device, set by the API server at creation`,
    );
  });
});

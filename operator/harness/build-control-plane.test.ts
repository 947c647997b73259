// The version switch of the control-plane build: what DEVICEPASS_KUBERNETES_VERSION resolves to
// in the script's one table (its `versions` mode builds nothing).
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const script = join(import.meta.dirname, "build-control-plane.sh");

async function resolve(
  version: string | undefined,
): Promise<{ ok: true; versions: Record<string, string> } | { ok: false; message: string }> {
  const env = { ...process.env };
  delete env.DEVICEPASS_KUBERNETES_VERSION;
  if (version !== undefined) env.DEVICEPASS_KUBERNETES_VERSION = version;
  try {
    const { stdout } = await promisify(execFile)("bash", [script, "versions"], { env });
    const versions: Record<string, string> = {};
    for (const line of stdout.trim().split("\n")) {
      const [name, value] = line.split("=");
      versions[name!] = value!;
    }
    return { ok: true, versions };
  } catch (error) {
    return { ok: false, message: (error as { stderr: string }).stderr };
  }
}

describe("DEVICEPASS_KUBERNETES_VERSION", () => {
  it.each([
    [undefined, { kubernetes: "v1.37.2", etcd: "v3.7.0", helm: "v3.22.0" }],
    ["1.37", { kubernetes: "v1.37.2", etcd: "v3.7.0", helm: "v3.22.0" }],
    ["1.36", { kubernetes: "v1.36.3", etcd: "v3.6.8", helm: "v3.22.0" }],
    ["1.35", { kubernetes: "v1.35.4", etcd: "v3.6.6", helm: "v3.22.0" }],
    ["1.35.0", { kubernetes: "v1.35.0", etcd: "v3.6.6", helm: "v3.22.0" }],
    ["v1.37.0", { kubernetes: "v1.37.0", etcd: "v3.7.0", helm: "v3.22.0" }],
  ])("%s resolves to a pinned row of the table", async (version, expected) => {
    expect(await resolve(version)).toEqual({ ok: true, versions: expected });
  });

  it.each([
    ["1.34", /Kubernetes 1\.34 is not supported; supported minors: 1\.37 1\.36 1\.35/],
    ["latest", /neither a minor \(1\.35\) nor a version \(1\.35\.4\)/],
    ["1.35.4.1", /neither a minor/],
  ])("%s is refused with the reason", async (version, message) => {
    const result = await resolve(version);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(message);
  });
});

// Proves the test API server is real: CRDs install and validate, and the garbage collector runs.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { adminKubectl, eventually, withNamespace } from "../support.ts";

const kubectl = adminKubectl();

const widgetCrd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.harness.devicepass.io" },
  spec: {
    group: "harness.devicepass.io",
    scope: "Namespaced",
    names: { plural: "widgets", singular: "widget", kind: "Widget" },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                required: ["size"],
                properties: { size: { type: "integer", minimum: 1, maximum: 10 } },
              },
            },
          },
        },
      },
    ],
  },
};

describe("the test control plane", () => {
  let namespace: { name: string; dispose: () => Promise<void> };
  beforeEach(async () => {
    namespace = await withNamespace(kubectl, "harness");
  });
  afterEach(() => namespace.dispose());

  it("is a real kube-apiserver of the pinned version", async () => {
    const version = await kubectl.json<{ serverVersion: { gitVersion: string } }>(["version"]);
    expect(version.serverVersion.gitVersion).toMatch(/^v1\.3[5-9]\.\d+/);
  });

  it("installs a CRD and creates a custom resource", async () => {
    await kubectl.ok(["apply", "-f", "-"], stringify(widgetCrd));
    await kubectl.ok(["wait", "--for=condition=Established", "crd/widgets.harness.devicepass.io"]);
    const widget = {
      apiVersion: "harness.devicepass.io/v1",
      kind: "Widget",
      metadata: { name: "w1" },
      spec: { size: 3 },
    };
    await eventually(() => kubectl.ok(["apply", "-n", namespace.name, "-f", "-"], stringify(widget)));
    const stored = await kubectl.json<{ spec: { size: number } }>([
      "get",
      "widget",
      "w1",
      "-n",
      namespace.name,
    ]);
    expect(stored.spec.size).toBe(3);
  });

  it("rejects an object that violates the CRD schema with the schema's message", async () => {
    await kubectl.ok(["apply", "-f", "-"], stringify(widgetCrd));
    await kubectl.ok(["wait", "--for=condition=Established", "crd/widgets.harness.devicepass.io"]);
    const widget = {
      apiVersion: "harness.devicepass.io/v1",
      kind: "Widget",
      metadata: { name: "big" },
      spec: { size: 42 },
    };
    const result = await eventually(async () => {
      const r = await kubectl.run(["apply", "-n", namespace.name, "-f", "-"], stringify(widget));
      if (r.stderr.includes("the server could not find the requested resource")) throw new Error(r.stderr);
      return r;
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      "spec.size: Invalid value: 42: spec.size in body should be less than or equal to 10",
    );
  });

  it("garbage-collects a ConfigMap when its owner is deleted", async () => {
    const ns = namespace.name;
    await kubectl.ok(["create", "configmap", "owner", "-n", ns]);
    const owner = await kubectl.json<{ metadata: { uid: string } }>(["get", "configmap", "owner", "-n", ns]);
    const child = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "child",
        namespace: ns,
        ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid }],
      },
    };
    await kubectl.ok(["apply", "-f", "-"], stringify(child));
    await kubectl.ok(["delete", "configmap", "owner", "-n", ns]);
    await eventually(
      async () => {
        const r = await kubectl.run(["get", "configmap", "child", "-n", ns]);
        expect(r.stderr).toContain("NotFound");
      },
      90_000,
      500,
    );
  });
});

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { operatorRuntimeEnv } from "./runtime-env.ts";

describe("operatorRuntimeEnv", () => {
  it("is what the Dockerfile sets for `docker run`, so the image and the chart run the operator alike", () => {
    const dockerfile = readFileSync(join(import.meta.dirname, "..", "..", "..", "Dockerfile"), "utf8");
    // The final stage's ENV instruction, continuation lines joined.
    const env = dockerfile
      .replace(/\\\n\s*/g, " ")
      .split("\n")
      .filter((line) => line.startsWith("ENV "))
      .flatMap((line) => [...line.slice(4).matchAll(/(\w+)=("[^"]*"|\S+)/g)])
      .map(([, name, value]) => [name, value!.replace(/^"|"$/g, "")]);
    for (const [name, value] of Object.entries(operatorRuntimeEnv)) expect(env).toContainEqual([name, value]);
  });
});

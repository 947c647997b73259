import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient } from "./client.ts";
import { ApiError } from "./errors.ts";

describe("KubeClient.replaceForVersion", () => {
  let server: Server;
  let client: KubeClient;
  let answer = "";
  let status = 200;
  const received: { method?: string; url?: string; body: string }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        received.push({ method: req.method, url: req.url, body });
        res.writeHead(status, { "content-type": "application/json" }).end(answer);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    client = KubeClient.create({
      server: `http://127.0.0.1:${port}`,
      skipTLSVerify: false,
      authorization: () => Promise.resolve(undefined),
    });
  });
  afterAll(async () => {
    await client.close();
    server.close();
  });
  const ref = { group: "", version: "v1", plural: "secrets", namespace: "db", name: "shard-00" };

  it("PUTs the object and reads the new resourceVersion off the body as the API server orders it", async () => {
    const data = { files: "x".repeat(300_000) };
    answer = JSON.stringify({
      kind: "Secret",
      apiVersion: "v1",
      metadata: { name: "shard-00", namespace: "db", uid: "u", resourceVersion: "4711" },
      data,
    });
    expect(await client.replaceForVersion(ref, { metadata: { name: "shard-00" }, data })).toBe("4711");
    expect(received.at(-1)).toMatchObject({ method: "PUT", url: "/api/v1/namespaces/db/secrets/shard-00" });
    expect(JSON.parse(received.at(-1)!.body)).toEqual({ metadata: { name: "shard-00" }, data });
  });

  it("decodes the body when the version is not where Kubernetes puts it", async () => {
    answer = JSON.stringify({ data: { a: "y".repeat(5000) }, metadata: { resourceVersion: "12" } });
    expect(await client.replaceForVersion(ref, {})).toBe("12");
  });

  it("throws the API server's error like any request", async () => {
    status = 409;
    answer = JSON.stringify({ kind: "Status", reason: "Conflict", message: "the object has been modified" });
    await expect(client.replaceForVersion(ref, {})).rejects.toSatisfy(
      (e) => e instanceof ApiError && e.kind === "Conflict",
    );
    status = 200;
  });
});

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool, send } from "./http-client.ts";

describe("send", () => {
  let server: Server;
  let base = "";
  const remotePorts: number[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      remotePorts.push(req.socket.remotePort!);
      if (req.url === "/echo") {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString()));
        req.on("end", () => res.writeHead(201, { "x-method": req.method }).end(`got ${body}`));
      } else if (req.url === "/silent") {
        // Never answers.
      } else if (req.url === "/stall") {
        res.writeHead(200);
        res.write("first part ");
      } else if (req.url === "/stream") {
        res.writeHead(200);
        res.write("line 1\n");
        setTimeout(() => res.end("line 2\n"), 50);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });
  const timeouts = { headersTimeoutMs: 2_000, bodyTimeoutMs: 2_000 };

  it("sends a body and reads the status, headers and text of the answer", async () => {
    const res = await send(`${base}/echo`, { method: "POST", headers: {}, body: "ünïcode", ...timeouts });
    expect(res.statusCode).toBe(201);
    expect(res.headers["x-method"]).toBe("POST");
    expect(await res.text()).toBe("got ünïcode");
  });

  it("reuses a pooled connection for requests one after another", async () => {
    const pool = createPool(base, { connections: 2 });
    remotePorts.length = 0;
    for (let i = 0; i < 3; i++)
      await (await send(`${base}/echo`, { method: "GET", headers: {}, pool, ...timeouts })).text();
    expect(new Set(remotePorts).size).toBe(1);
    pool.destroy();
  });

  it("fails when the headers do not come in time", async () => {
    await expect(
      send(`${base}/silent`, { method: "GET", headers: {}, headersTimeoutMs: 100, bodyTimeoutMs: 0 }),
    ).rejects.toThrow(/no response headers within 100 ms/);
  });

  it("fails a body that stalls, and lets a body without a timeout stream", async () => {
    const stalled = await send(`${base}/stall`, {
      method: "GET",
      headers: {},
      headersTimeoutMs: 1_000,
      bodyTimeoutMs: 100,
    });
    await expect(stalled.text()).rejects.toThrow(/stalled for 100 ms/);
    const streamed = await send(`${base}/stream`, {
      method: "GET",
      headers: {},
      headersTimeoutMs: 1_000,
      bodyTimeoutMs: 0,
    });
    expect(await streamed.text()).toBe("line 1\nline 2\n");
  });

  it("stops at an aborted signal", async () => {
    const abort = new AbortController();
    const res = await send(`${base}/stall`, {
      method: "GET",
      headers: {},
      signal: abort.signal,
      headersTimeoutMs: 1_000,
      bodyTimeoutMs: 0,
    });
    abort.abort();
    await expect(res.text()).rejects.toThrow(/abort/i);
  });
});

import { createServer, type IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DoveadmClient, interpretFlushResponse, interpretKickResponse } from "./doveadm.ts";

describe("interpretKickResponse", () => {
  it("treats a response and 'no sessions' (exit code 68) as success", () => {
    expect(interpretKickResponse('[["doveadmResponse",[],"t"]]').ok).toBe(true);
    expect(interpretKickResponse('[["error",{"type":"exitCode","exitCode":68},"t"]]')).toEqual({
      ok: true,
      message: "No session was open.",
    });
  });

  it("reports other errors and garbage", () => {
    expect(interpretKickResponse('[["error",{"type":"exitCode","exitCode":75},"t"]]').ok).toBe(false);
    expect(interpretKickResponse("<html>").ok).toBe(false);
    expect(interpretKickResponse("{}").ok).toBe(false);
  });
});

describe("interpretFlushResponse", () => {
  it("treats a response as success and anything else as a failure", () => {
    expect(interpretFlushResponse('[["doveadmResponse",[{"entries":"2"}],"t"]]').ok).toBe(true);
    expect(interpretFlushResponse('[["error",{"type":"exitCode","exitCode":75},"t"]]').ok).toBe(false);
    expect(interpretFlushResponse("<html>").ok).toBe(false);
  });
});

describe("DoveadmClient", () => {
  const seen: { auth?: string | undefined; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      seen.push({ auth: req.headers.authorization, body });
      if (req.headers.authorization !== `X-Dovecot-API ${Buffer.from("s3cret").toString("base64")}`) {
        res.writeHead(401).end();
        return;
      }
      const [[command]] = JSON.parse(body) as [[string]];
      const answer = command === "authCacheFlush" ? '[{"entries":"1"}]' : "[]";
      res.writeHead(200, { "content-type": "application/json" }).end(`[["doveadmResponse",${answer},"x"]]`);
    });
  });
  let url = "";
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address() as { port: number };
    url = `http://127.0.0.1:${address.port}/doveadm/v1`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("posts a kick for the address with the base64 API key", async () => {
    expect(await new DoveadmClient(url, "s3cret").kick("alice@example.com")).toEqual({
      ok: true,
      message: "Open sessions were closed.",
    });
    expect(JSON.parse(seen.at(-1)!.body)).toEqual([
      ["kick", { mask: ["alice@example.com"] }, expect.any(String)],
    ]);
  });

  it("posts an auth cache flush for the address", async () => {
    expect((await new DoveadmClient(url, "s3cret").flushAuthCache("alice@example.com")).ok).toBe(true);
    expect(JSON.parse(seen.at(-1)!.body)).toEqual([
      ["authCacheFlush", { user: ["alice@example.com"] }, expect.any(String)],
    ]);
    expect((await new DoveadmClient(url, "wrong").flushAuthCache("alice@example.com")).message).toContain(
      "HTTP 401",
    );
  });

  it("sends the key byte for byte, as Dovecot read it from the same file", async () => {
    const result = await new DoveadmClient(url, "s3cret\n").kick("alice@example.com");
    expect(result.ok).toBe(false);
    expect(seen.at(-1)!.auth).toBe(`X-Dovecot-API ${Buffer.from("s3cret\n").toString("base64")}`);
  });

  it("reports a refused key", async () => {
    const result = await new DoveadmClient(url, "wrong").kick("alice@example.com");
    expect(result.ok).toBe(false);
    expect(result.message).toContain("HTTP 401");
  });
});

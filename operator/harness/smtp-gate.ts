// A loopback TCP forwarder in front of a real SMTP server (Postfix) that a test can close: while
// closed, it answers every connection the way a relay out of service does (`421 4.3.2`, RFC 5321
// §3.8) and hangs up, so a sender sees a temporary failure; open, it forwards byte for byte.
import { connect, createServer, type Server, type Socket } from "node:net";
import { freePort, loopback } from "./net.ts";

export class SmtpGate {
  readonly host = loopback;
  readonly port: number;
  /** Connections answered with 421 so far. */
  refused = 0;
  private open = true;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  private constructor(server: Server, port: number) {
    this.server = server;
    this.port = port;
  }

  static async start(upstream: { host: string; port: number }): Promise<SmtpGate> {
    const port = await freePort();
    const server = createServer((client) => gate.accept(client, upstream));
    const gate = new SmtpGate(server, port);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, loopback, resolve);
    });
    return gate;
  }

  private accept(client: Socket, upstream: { host: string; port: number }): void {
    this.sockets.add(client);
    client.on("close", () => this.sockets.delete(client));
    client.on("error", () => {});
    if (!this.open) {
      this.refused++;
      client.end("421 4.3.2 Service not available, closing transmission channel\r\n");
      return;
    }
    const relay = connect({ host: upstream.host, port: upstream.port });
    this.sockets.add(relay);
    relay.on("close", () => {
      this.sockets.delete(relay);
      client.destroy();
    });
    relay.on("error", () => client.destroy());
    client.on("close", () => relay.destroy());
    client.pipe(relay);
    relay.pipe(client);
  }

  /** Closed: new connections get 421; open: they reach the relay. */
  set closed(closed: boolean) {
    this.open = !closed;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// Loopback networking for the harness: a free TCP port for each listener a test starts.
import { createServer } from "node:net";

export const loopback = "127.0.0.1";

/** A TCP port on loopback that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, loopback, resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no TCP port was assigned");
  return address.port;
}

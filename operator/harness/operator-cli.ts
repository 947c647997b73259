// The operator exactly as a user runs it: `node operator/src/main.ts --kubeconfig … --namespace …`
// as a separate process, its JSON log (stderr) kept in a file, stopped with SIGTERM. Its temp
// folder is watched like the control plane's, so a crashed test never leaves it running.
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { ownedTempDir, stopTree } from "./owned-dir.ts";
import { ManagedProcess } from "./process.ts";

const mainScript = join(import.meta.dirname, "..", "src", "main.ts");

export class OperatorCli {
  readonly dir: string;
  private readonly process: ManagedProcess;
  private stopped = false;

  private constructor(dir: string, process: ManagedProcess) {
    this.dir = dir;
    this.process = process;
  }

  /** Starts `node operator/src/main.ts <args>` and waits for its "operator running" log line (info level). */
  static async start(args: string[], timeoutMs = 60_000): Promise<OperatorCli> {
    const dir = await ownedTempDir("devicepass-operator-");
    // process.execPath: the Node 24 that runs the tests (node_modules' node), as `npm start` uses.
    const process = new ManagedProcess("operator", globalThis.process.execPath, [mainScript, ...args], dir);
    const cli = new OperatorCli(dir, process);
    try {
      await process.start();
      const deadline = Date.now() + timeoutMs;
      while (!(await cli.log()).includes('"operator running"')) {
        await process.assertRunning();
        if (Date.now() > deadline)
          throw new Error(`the operator did not start in ${timeoutMs} ms:\n${await process.tail()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } catch (error) {
      await cli.stop();
      throw error;
    }
    return cli;
  }

  /** Its log so far (JSON lines; it never logs a plaintext password). */
  log(): Promise<string> {
    return readFile(this.process.logFile, "utf8").catch(() => "");
  }

  async assertRunning(): Promise<void> {
    await this.process.assertRunning();
  }

  /** SIGTERM (the operator shuts down cleanly), then removes its folder. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await stopTree(this.process);
    await rm(this.dir, { recursive: true, force: true });
  }
}

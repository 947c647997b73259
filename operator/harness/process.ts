// A child process of the control plane: logs to a file, records its pid for the watchdog,
// and stops with SIGTERM, then SIGKILL after a grace period.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

export class ManagedProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  readonly logFile: string;

  readonly name: string;
  private readonly command: string;
  private readonly args: string[];
  private readonly dir: string;

  constructor(name: string, command: string, args: string[], dir: string) {
    this.name = name;
    this.command = command;
    this.args = args;
    this.dir = dir;
    this.logFile = join(dir, `${name}.log`);
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const log = createWriteStream(this.logFile, { flags: "a" });
    const child = spawn(this.command, this.args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    await writeFile(join(this.dir, "pids", this.name), String(child.pid));
  }

  /** Throws with the end of the log when the process has exited. */
  async assertRunning(): Promise<void> {
    if (this.running) return;
    throw new Error(`${this.name} exited (code ${this.child?.exitCode}):\n${await this.tail()}`);
  }

  async tail(lines = 30): Promise<string> {
    const text = await readFile(this.logFile, "utf8").catch(() => "");
    return text.split("\n").slice(-lines).join("\n");
  }

  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (child && this.running) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    await rm(join(this.dir, "pids", this.name), { force: true });
  }
}

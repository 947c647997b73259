// The hashing limit: argon2id over COUNT fresh passwords with CONCURRENCY in flight, using the
// operator's own hashPassword and parameters; prints {"ms": …} as JSON. Its own process, so that
// libuv's thread pool can be sized to the cores (UV_THREADPOOL_SIZE must be set before start).
import { parseArgs } from "node:util";
import {
  generatePassword,
  hashPassword,
  owaspArgon2id,
  setHashConcurrency,
} from "../src/credentials/password.ts";
import { pool } from "../harness/pool.ts";

export interface Argon2LimitResult {
  ms: number;
  count: number;
  concurrency: number;
  threadPoolSize: number;
  /** CPU seconds this process used (the hashing threads included). */
  cpuSeconds: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { count: { type: "string" }, concurrency: { type: "string" } },
  });
  const count = Number(values.count);
  const concurrency = Number(values.concurrency);
  const passwords = Array.from({ length: count }, () => generatePassword(24));
  // The limit hashes on every core whatever the operator's own setting (--hash-concurrency).
  setHashConcurrency(concurrency);
  const started = performance.now();
  await pool(passwords, concurrency, (password) => hashPassword(password, owaspArgon2id));
  const result: Argon2LimitResult = {
    ms: performance.now() - started,
    count,
    concurrency,
    threadPoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  };
  process.stdout.write(JSON.stringify(result) + "\n");
}

await main();

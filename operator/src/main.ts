// Entry point of the image, wiring only: the subcommand, then command line → client → seal key →
// operator → leader election → signals. `devicepass` alone runs the operator.
import { pino } from "pino";
import { parseCommandLine, usage } from "./config.ts";
import { setHashConcurrency } from "./credentials/password.ts";
import { loadSealKey } from "./credentials/seal-key-secret.ts";
import { serve } from "./http.ts";
import { KubeClient } from "./kube/client.ts";
import { ApiError } from "./kube/errors.ts";
import { createLogger, type Logger } from "./log.ts";
import { OperatorMetrics } from "./metrics.ts";
import { Operator } from "./operator.ts";
import { LeaderElector, leaderIdentity } from "./runtime/leader-election.ts";
import { backoffDelay } from "./runtime/queue.ts";

/** Waits for the API server: a pod that crash-loops stays in CrashLoopBackOff for minutes after it is back. */
export async function waitForApiServer(
  client: KubeClient,
  log: Logger,
  stopping: () => boolean,
): Promise<{ gitVersion: string } | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.request<{ gitVersion: string }>("GET", "/version");
    } catch (error) {
      // Refused credentials are fatal: waiting does not mend them.
      if (error instanceof ApiError && (error.kind === "Unauthorized" || error.kind === "Forbidden"))
        throw error;
      const retryInMs = backoffDelay(attempt, { baseMs: 500, maxMs: 30_000 });
      log.warn(
        { server: client.server, err: (error as Error).message, retryInMs },
        "cannot reach the API server; retrying",
      );
      await new Promise((resolve) => setTimeout(resolve, retryInMs));
      if (stopping()) return undefined;
    }
  }
}

/** What the caller of a program adds: work to do at its shutdown, after the program's own (the sandbox's stop). */
export interface RunOptions {
  cleanups?: (() => Promise<void>)[];
}

async function runOperator(args: string[], options: RunOptions = {}): Promise<void> {
  const cli = parseCommandLine(args);
  if (cli.help) {
    process.stdout.write(usage);
    return;
  }
  const log = createLogger(cli.logLevel, pino.destination(2));
  const cleanups: (() => Promise<void>)[] = [...(options.cleanups ?? [])];
  let operator: Operator | undefined;
  let elector: LeaderElector | undefined;

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting without waiting");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, gracefulShutdownMs: cli.gracefulShutdownMs }, "shutting down");
    // A standby must not become the leader now; a leader keeps renewing while reconciles drain.
    await elector?.stopAcquiring();
    if (operator) {
      const running = operator;
      const drained = await Promise.race([
        running.stop().then(() => true),
        new Promise<false>((resolve) => setTimeout(resolve, cli.gracefulShutdownMs, false).unref()),
      ]);
      if (!drained) {
        // Still writing: keep the Lease (it expires on its own) so that no other replica writes too.
        log.error(
          { inFlight: running.inFlight() },
          "reconciles still in flight at the graceful shutdown timeout; exiting without releasing the Lease",
        );
        process.exit(1);
      }
      // Nothing is written any more: hand the Lease over at once (client-go's ReleaseOnCancel).
      await elector?.stop({ release: true });
    }
    for (const cleanup of cleanups.reverse())
      await cleanup().catch((e: unknown) => log.error({ err: (e as Error).message }, "cleanup failed"));
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));

  const client = await KubeClient.fromKubeconfig(cli.kubeconfig, "devicepass-operator");
  const version = await waitForApiServer(client, log, () => stopping);
  if (!version) return;
  log.info({ server: client.server, version: version.gitVersion }, "connected to the cluster");
  const seal = await loadSealKey(client, cli.config.sealKeySecret);

  setHashConcurrency(cli.config.hashConcurrency);
  const metrics = new OperatorMetrics();
  client.observer = metrics.observeRequest;
  const op = (operator = new Operator({ client, config: cli.config, log, metrics, seal }));
  // Ready once the caches are synced, on the leader and on a standby alike.
  const probes = { healthy: () => true, ready: () => op.synced };
  for (const [address, handlers] of [
    [cli.metricsAddr, { registry: metrics.registry }],
    [cli.healthAddr, { probes }],
  ] as const) {
    const server = await serve(address, handlers);
    if (server) {
      cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
      log.info({ address: server.address() }, "serving HTTP");
    }
  }
  cleanups.push(() => client.close());
  await op.startCaches();
  if (stopping) return;
  const { enabled, namespace, name } = cli.leaderElection;
  if (enabled) {
    metrics.leader.set({ name }, 0);
    elector = new LeaderElector({
      client,
      namespace,
      name,
      identity: leaderIdentity(),
      log: log.child({ component: "leader-election" }),
      onStartedLeading: () => {
        metrics.leader.set({ name }, 1);
        op.startControllers();
      },
      onStoppedLeading: () => {
        // Another replica may take over any moment now: stop writing at once, as controller-runtime
        // does. The Deployment restarts this pod, which then stands by.
        metrics.leader.set({ name }, 0);
        process.exit(1);
      },
    });
    elector.start();
  } else {
    op.startControllers();
  }
  log.info(
    {
      namespaces: cli.config.namespaces ?? "all",
      passdbNamespace: cli.config.passdbNamespace,
      leaderElection: elector ? { lease: `${namespace}/${name}`, identity: elector.identity } : false,
    },
    "operator running",
  );
}

/** The programs of the one image, by their first argument. */
const subcommands: Record<string, (args: string[], options: RunOptions) => Promise<void>> = {
  // The internet-facing invitation portal: loaded only when asked for.
  portal: async (args) => (await import("./portal/main.ts")).runPortal(args),
  // The password database sidecar next to Dovecot.
  "passdb-sync": async (args) => (await import("./passdb-sync/command.ts")).runPassdbSync(args),
};

/** Runs the program `argv` names (the operator when it names none). */
export async function main(argv: string[], options: RunOptions = {}): Promise<void> {
  const [first, ...rest] = argv;
  const sub = first !== undefined ? subcommands[first] : undefined;
  if (sub) return sub(rest, options);
  return runOperator(argv, options);
}

/** The process's end when main() fails: the error on stderr, exit status 1. */
export function exitOnError(error: unknown): never {
  process.stderr.write(`devicepass: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}

if (import.meta.main) main(process.argv.slice(2)).catch(exitOnError);

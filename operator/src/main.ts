// Entry point, wiring only: command line → cluster (or sandbox) → client → operator → signals;
// `devicepass passdb-sync …` runs the sidecar next to Dovecot instead (passdb-sync/command.ts).
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { loadKubeConfig, KubeClient } from "./kube/client.ts";
import { parseCommandLine, usage } from "./config.ts";
import { pino } from "pino";
import { createLogger } from "./log.ts";
import { Operator } from "./operator.ts";
import { OperatorMetrics } from "./metrics.ts";
import { serve } from "./http.ts";
import { LeaderElector, leaderIdentity } from "./runtime/leader-election.ts";
import { ApiError } from "./kube/errors.ts";
import { backoffDelay } from "./runtime/queue.ts";

/** Is a cluster configured, the way kubectl and client-node look for one? */
function clusterConfigured(env: NodeJS.ProcessEnv): boolean {
  if (env.KUBECONFIG) return env.KUBECONFIG.split(":").some((p) => p !== "" && existsSync(p));
  if (existsSync(join(homedir(), ".kube", "config"))) return true;
  return (
    env.KUBERNETES_SERVICE_HOST !== undefined &&
    existsSync("/var/run/secrets/kubernetes.io/serviceaccount/token")
  );
}

async function main(): Promise<void> {
  const cli = parseCommandLine(process.argv.slice(2));
  if (cli.help) {
    process.stdout.write(usage);
    return;
  }
  // Logs go to stderr, so that stdout carries only the sandbox's shell lines.
  const log = createLogger(cli.logLevel, pino.destination(2));
  const cleanups: (() => Promise<void>)[] = [];
  let kubeconfigPath = cli.kubeconfig;
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
          {
            inFlight: Object.fromEntries(
              Object.values(running.controllers).map((c) => [c.name, c.queue.inFlight]),
            ),
          },
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

  if (cli.sandbox || (!kubeconfigPath && !clusterConfigured(process.env))) {
    const { startSandbox } = await import("./sandbox.ts");
    const sandbox = await startSandbox(log, cli.config.passdbNamespace);
    cleanups.push(() => sandbox.stop());
    if (stopping) return;
    kubeconfigPath = sandbox.kubeconfigPath;
    process.stdout.write(
      `export KUBECONFIG=${sandbox.kubeconfigPath}\nexport PATH=${sandbox.kubectlDir}:$PATH\n` +
        `sandbox ready: kube-apiserver ${sandbox.version} at ${sandbox.server}; run the two lines above in another terminal, then kubectl apply -f examples/domain/ and -f examples/mail/\n`,
    );
  }

  const kubeConfig = loadKubeConfig(kubeconfigPath);
  const client = await KubeClient.create(kubeConfig, "devicepass-operator");
  // An API server that is down is waited for, not a reason to exit: a pod that crash-loops
  // stays in CrashLoopBackOff for minutes after the server is back. Refused credentials are fatal.
  let version: { gitVersion: string } | undefined;
  for (let attempt = 1; !version; attempt++) {
    try {
      version = await client.request<{ gitVersion: string }>("GET", "/version");
    } catch (error) {
      if (error instanceof ApiError && (error.kind === "Unauthorized" || error.kind === "Forbidden"))
        throw error;
      const retryInMs = backoffDelay(attempt, { baseMs: 500, maxMs: 30_000 });
      log.warn(
        { server: client.server, err: (error as Error).message, retryInMs },
        "cannot reach the API server; retrying",
      );
      await new Promise((resolve) => setTimeout(resolve, retryInMs));
      if (stopping) return;
    }
  }
  log.info({ server: client.server, version: version.gitVersion }, "connected to the cluster");

  const metrics = new OperatorMetrics();
  client.observer = metrics.observeRequest;
  const op = (operator = new Operator({ client, config: cli.config, log, metrics }));
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

// Subcommands of the one image; each parses its own flags. No subcommand: the operator.
const [subcommand, ...subcommandArgs] = process.argv.slice(2);
const run =
  subcommand === "passdb-sync"
    ? import("./passdb-sync/command.ts").then(({ runPassdbSync }) => runPassdbSync(subcommandArgs))
    : main();
run.catch((error: unknown) => {
  process.stderr.write(`devicepass: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});

// `npm start`: a developer's way to run devicepass from a checkout. With no cluster configured
// (or with --sandbox) it first starts the embedded control plane (harness/sandbox.ts) and points
// the program at it; then it runs operator/src/main.ts's main() like the image does. Not shipped.
import { pino } from "pino";
import { defaults } from "../src/config.ts";
import { clusterConfigured } from "../src/kube/kubeconfig.ts";
import { createLogger } from "../src/log.ts";
import { exitOnError, main } from "../src/main.ts";
import { startSandbox } from "./sandbox.ts";

async function start(argv: string[]): Promise<void> {
  const wantsSandbox = argv.includes("--sandbox");
  const args = argv.filter((a) => a !== "--sandbox");
  const help = args.includes("--help") || args.includes("-h");
  const cleanups: (() => Promise<void>)[] = [];
  if (!help && (wantsSandbox || (!args.some((a) => a.startsWith("--kubeconfig")) && !clusterConfigured()))) {
    const log = createLogger(process.env.DEVICEPASS_LOG_LEVEL ?? "info", pino.destination(2));
    const sandbox = await startSandbox(log, defaults.passdbNamespace);
    // The control plane stops at the program's shutdown, after its own cleanups (a Ctrl-C).
    cleanups.push(() => sandbox.stop());
    process.env.KUBECONFIG = sandbox.kubeconfigPath;
    // The operator (no subcommand) writes invitation links to the sandbox's portal.
    if (!args.some((a) => a.startsWith("--portal-url")) && (args[0] === undefined || args[0].startsWith("-")))
      args.push("--portal-url", sandbox.portalUrl);
    process.stdout.write(
      `export KUBECONFIG=${sandbox.kubeconfigPath}\nexport PATH=${sandbox.kubectlDir}:$PATH\n` +
        `sandbox ready: kube-apiserver ${sandbox.version} at ${sandbox.server}, invitation portal at ${sandbox.portalUrl}; run the two lines above in another terminal, then kubectl apply -f examples/domain/ and -f examples/mail/\n`,
    );
  }
  await main(args, { cleanups });
}

start(process.argv.slice(2)).catch(exitOnError);

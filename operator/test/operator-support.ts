// Runs the operator in-process for integration tests, watching only the test's namespaces, and
// captures its logs and API writes so tests can assert on them.
import { Writable } from "node:stream";
import { join } from "node:path";
import { afterAll, beforeAll, inject } from "vitest";
import { adminKubectl, withNamespace } from "./support.ts";
import { verify } from "@node-rs/argon2";
import { defaultConfig, type OperatorConfig } from "../src/config.ts";
import { loadSealKey } from "../src/credentials/seal-key-secret.ts";
import { KubeClient } from "../src/kube/client.ts";
import { createLogger } from "../src/log.ts";
import { Operator } from "../src/operator.ts";
import { parseShard, type PassdbEntry } from "../src/passdb/format.ts";
import type { Kubectl } from "../harness/kubectl.ts";

export interface RunningOperator {
  operator: Operator;
  logs: string[];
  /** Write requests (create, update, patch, delete) since start or the last reset. */
  writes: { verb: string; path: string }[];
  stop(): Promise<void>;
}

/** Small argon2 parameters keep tests fast; production defaults are tested in unit tests. */
export const testArgon2 = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

export async function startOperator(
  overrides: Partial<OperatorConfig> & { passdbNamespace: string },
): Promise<RunningOperator> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      done();
    },
  });
  const log = createLogger("debug", sink);
  const client = await KubeClient.fromKubeconfig(inject("kubeconfig"), "devicepass-test");
  const writes: { verb: string; path: string }[] = [];
  client.observer = (verb, path) => {
    if (["create", "update", "patch", "delete"].includes(verb)) writes.push({ verb, path });
  };
  // Test files run in parallel against one cluster, while a MailDomain is cluster-wide: only the
  // MailDomain tests (which use domains of their own) turn the requirement on.
  const config: OperatorConfig = defaultConfig({
    argon2: testArgon2,
    passdbShards: 4,
    requireMailDomain: false,
    passdbBatchWindowMs: 20,
    minRotationIntervalMs: 0,
    operatorNamespace: overrides.passdbNamespace,
    sealKeySecret: { namespace: overrides.passdbNamespace, name: "devicepass-seal-key" },
    ...overrides,
  });
  const operator = new Operator({
    client,
    config,
    log,
    seal: await loadSealKey(client, config.sealKeySecret),
  });
  await operator.start();
  return {
    operator,
    logs,
    writes,
    stop: async () => {
      await operator.stop();
      await client.close();
    },
  };
}

interface SecretJson {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  data?: Record<string, string>;
}

export async function passdbEntries(kubectl: Kubectl, namespace: string): Promise<PassdbEntry[]> {
  const list = await kubectl.json<{ items: SecretJson[] }>([
    "get", "secrets", "-n", namespace, "-l", "app.kubernetes.io/component=passdb",
  ]); // prettier-ignore
  return list.items.flatMap(
    (s) =>
      parseShard(
        Object.fromEntries(
          Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]),
        ),
      ).entries,
  );
}

export async function secretData(
  kubectl: Kubectl,
  namespace: string,
  name: string,
): Promise<Record<string, string>> {
  const secret = await kubectl.json<SecretJson>(["get", "secret", name, "-n", namespace]);
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]),
  );
}

export async function devicePassword(
  kubectl: Kubectl,
  namespace: string,
  secretName: string,
): Promise<string> {
  return (await secretData(kubectl, namespace, secretName)).password!;
}

/** Would the mail server accept `password` for `device` (namespace/name)? Checks the database's hash. */
export async function accepts(entries: PassdbEntry[], device: string, password: string): Promise<boolean> {
  const entry = entries.find((e) => e.device === device);
  if (!entry) return false;
  return verify(entry.hash.replace(/^\{ARGON2ID\}/, ""), password);
}

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

export async function readyCondition(
  kubectl: Kubectl,
  kind: string,
  namespace: string,
  name: string,
): Promise<Condition | undefined> {
  const object = await kubectl.json<{ status?: { conditions?: Condition[] } }>([
    "get",
    kind,
    name,
    "-n",
    namespace,
  ]);
  return object.status?.conditions?.find((c) => c.type === "Ready");
}

export const mailExamples = join(import.meta.dirname, "..", "..", "examples", "mail");

export interface OperatorTestEnvironment {
  /** The namespaces the operator watches, made for this test file (filled in by beforeAll). */
  namespaces: string[];
  passdbNamespace: string;
  running: RunningOperator;
  /** Stops the operator, then starts a new one on the same namespaces (a restart). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Registers beforeAll/afterAll for a test file: `count` namespaces and a password database
 * namespace, the operator watching them, and optionally examples/mail/ applied and Ready in the
 * first namespace.
 */
export function useOperator(
  prefix: string,
  options: { namespaces?: number; config?: Partial<OperatorConfig>; applyExamples?: boolean } = {},
): OperatorTestEnvironment {
  const kubectl = adminKubectl();
  const created: { dispose: () => Promise<void> }[] = [];
  let running: RunningOperator | undefined;
  const env: OperatorTestEnvironment = {
    namespaces: [],
    passdbNamespace: "",
    get running() {
      if (!running) throw new Error("the operator is not running");
      return running;
    },
    restart: async () => {
      await env.stop();
      running = await startOperator({
        ...options.config,
        namespaces: env.namespaces,
        passdbNamespace: env.passdbNamespace,
      });
    },
    stop: async () => {
      await running?.stop();
      running = undefined;
    },
  };
  beforeAll(async () => {
    for (let i = 0; i < (options.namespaces ?? 1); i++) {
      const ns = await withNamespace(kubectl, i === 0 ? prefix : `${prefix}-${i + 1}`);
      created.push(ns);
      env.namespaces.push(ns.name);
    }
    const passdb = await withNamespace(kubectl, `${prefix}-passdb`);
    created.push(passdb);
    env.passdbNamespace = passdb.name;
    await env.restart();
    if (options.applyExamples) {
      await kubectl.ok(["apply", "-n", env.namespaces[0]!, "-f", mailExamples]);
      await kubectl.ok([
        "wait",
        "-n",
        env.namespaces[0]!,
        "--for=condition=Ready",
        "--timeout=60s",
        "maildevice",
        "--all",
      ]);
    }
  });
  afterAll(async () => {
    await env.stop();
    for (const ns of created) await ns.dispose();
  });
  return env;
}

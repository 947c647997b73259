// The attacker's workbench for the security tests (issue 11): tenants that are namespace editors
// (kubectl impersonating a user bound to the built-in `edit` role, which takes in the chart's
// aggregated roles), a MailDomain of a random name, the operator as its own process, and where a
// login proves it Debian's Dovecot reading the database from a mirrored Secret volume, with a
// recorder in front of its doveadm API. Everything read back is read raw, as Dovecot sees it.
// Only the harness and kubectl are used, never the operator's own modules, so that the same tests
// can run against an older commit of the operator.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { afterAll, afterEach, beforeAll, inject } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { MailServer } from "../../harness/dovecot.ts";
import { FaultProxy, type ProxiedRequest } from "../../harness/fault-proxy.ts";
import { imapLogin, pop3Login, smtpAuth, type Endpoint } from "../../harness/mail-clients.ts";
import { freePort, loopback } from "../../harness/net.ts";
import { OperatorProcess } from "../../harness/operator-process.ts";
import { SecretVolume } from "../../harness/secret-volume.ts";
import type { Kubectl, KubectlResult } from "../../harness/kubectl.ts";
import { chartDir, helmFor } from "../install-support.ts";
import { adminKubectl, eventually, withNamespace } from "../support.ts";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const group = "mail.devicepass.io";
export const apiVersion = `${group}/v1alpha1`;
export const hashAnnotation = `${group}/password-hash`;
export const digestAnnotation = `${group}/password-sha256`;
export const sealAnnotation = `${group}/seal`;
export const rotateAnnotation = `${group}/rotate`;
export const credentialSecret = (device: string) => `${device}-mail-credentials`;

const hex = (bytes = 3) => randomBytes(bytes).toString("hex");

/** kubectl as `user`: every command impersonates them, as `kubectl --as` does. */
export function asUser(kubectl: Kubectl, user: string): Kubectl {
  const withUser = (args: string[]) => [...args, `--as=${user}`];
  return {
    run: (args, input) => kubectl.run(withUser(args), input),
    ok: (args, input) => kubectl.ok(withUser(args), input),
    json: (args) => kubectl.json(withUser(args)),
  };
}

export const yamlOf = (objects: unknown[]) => objects.map((o) => stringify(o)).join("---\n");

export const mailAddress = (name: string, address: string) => ({
  apiVersion,
  kind: "MailAddress",
  metadata: { name },
  spec: { address },
});

export const mailDevice = (name: string, address: string, extra: Record<string, unknown> = {}) => ({
  apiVersion,
  kind: "MailDevice",
  metadata: { name },
  spec: { address, displayName: name, ...extra },
});

/** A namespace editor: their namespace, and kubectl as them. */
export interface Tenant {
  namespace: string;
  user: string;
  kubectl: Kubectl;
  /** `kubectl apply -f -` of `objects` in the tenant's namespace, as the tenant. */
  apply(objects: unknown[]): Promise<KubectlResult>;
}

/**
 * The chart's aggregated view and edit roles under a release name of our own, so that the built-in
 * `edit` role gives namespace editors MailAddresses and MailDevices (the shared cluster may not
 * have the chart installed). Returns their names.
 */
export async function installAggregatedRoles(admin: Kubectl, release: string): Promise<string[]> {
  const helm = await helmFor();
  const rendered = await helm.ok([
    "template", release, chartDir, "--set", "watchNamespaces={unused}", "--kube-version", "1.35.0",
  ]); // prettier-ignore
  const roles = parseAllDocuments(rendered)
    .map((d) => d.toJS() as { kind?: string; metadata?: { name: string; labels?: Record<string, string> } })
    .filter(
      (o) =>
        o?.kind === "ClusterRole" &&
        Object.keys(o.metadata?.labels ?? {}).some((l) =>
          l.startsWith("rbac.authorization.k8s.io/aggregate-to-"),
        ),
    );
  if (roles.length === 0) throw new Error("the chart renders no aggregated ClusterRole");
  await admin.ok(["apply", "-f", "-"], yamlOf(roles));
  return roles.map((r) => r.metadata!.name);
}

export interface ShardFile {
  shard: string;
  key: string;
  text: string;
}

/** Every key of every shard Secret in the database namespace, decoded: what Dovecot's volume holds. */
export async function readDatabase(admin: Kubectl, namespace: string): Promise<ShardFile[]> {
  const list = await admin.json<{ items: { metadata: { name: string }; data?: Record<string, string> }[] }>([
    "get", "secrets", "-n", namespace, "-l", "app.kubernetes.io/component=passdb",
  ]); // prettier-ignore
  return list.items.flatMap((s) =>
    Object.entries(s.data ?? {}).map(([key, value]) => ({
      shard: s.metadata.name,
      key,
      text: Buffer.from(value, "base64").toString("utf8"),
    })),
  );
}

/** The file name Dovecot's Lua passdb opens for a login (examples/dovecot/devicepass-passdb.lua). */
export function luaAddressKey(address: string): string {
  return address
    .replace(/[A-Z]/g, (c) => c.toLowerCase())
    .replace(/[^a-z0-9.-]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

export interface DatabaseLine {
  shard: string;
  key: string;
  line: string;
  fields: string[];
}

/** Every non-comment line of the address files (not the ownership records). */
export function addressLines(files: readonly ShardFile[]): DatabaseLine[] {
  return files
    .filter((f) => f.key.includes("_40"))
    .flatMap((f) =>
      f.text
        .split("\n")
        .filter((line) => line !== "" && !line.startsWith("#"))
        .map((line) => ({ shard: f.shard, key: f.key, line, fields: line.split("\t") })),
    );
}

/** The lines Dovecot would try for a login as `address`: its own file, its own address. */
export function linesFor(files: readonly ShardFile[], address: string): DatabaseLine[] {
  const key = luaAddressKey(address);
  return addressLines(files).filter((l) => l.key === key && l.fields[0]?.toLowerCase() === address);
}

/** Ownership records (`owners` keys): address, namespace, since, released-at. */
export function ownerRecords(files: readonly ShardFile[]): { shard: string; fields: string[] }[] {
  return files
    .filter((f) => f.key === "owners")
    .flatMap((f) =>
      f.text
        .split("\n")
        .filter((line) => line !== "" && !line.startsWith("#"))
        .map((line) => ({ shard: f.shard, fields: line.split("\t") })),
    );
}

const argon2idLine = /^\{ARGON2ID\}\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
const wellFormedAddress = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*@[a-z0-9.-]+$/;

/** Why the database's bytes are not what devicepass may publish (empty: clean). */
export function databaseProblems(files: readonly ShardFile[]): string[] {
  const problems: string[] = [];
  for (const f of files) {
    if (/\{PLAIN\}|\{CLEAR\}|\{CRYPT\}|\r|\0/.test(f.text))
      problems.push(`${f.shard}/${f.key} holds ${JSON.stringify(f.text)}`);
  }
  for (const { shard, key, line, fields } of addressLines(files)) {
    const where = `${shard}/${key}: ${JSON.stringify(line)}`;
    if (fields.length !== 4) problems.push(`${where} has ${fields.length} fields`);
    const [address = "", device = "", protocols = "", hash = ""] = fields;
    if (!wellFormedAddress.test(address)) problems.push(`${where}: address ${JSON.stringify(address)}`);
    if (luaAddressKey(address) !== key) problems.push(`${where}: another address's line`);
    if (!/^[a-z0-9-]+\/[a-z0-9.-]+$/.test(device))
      problems.push(`${where}: device ${JSON.stringify(device)}`);
    if (!protocols.split(",").every((p) => ["imap", "pop3", "smtp"].includes(p)))
      problems.push(`${where}: protocols ${JSON.stringify(protocols)}`);
    if (!argon2idLine.test(hash)) problems.push(`${where}: hash ${JSON.stringify(hash)}`);
  }
  return problems;
}

/** Asserts that no version of the database the watch saw (there must be some) held anything unclean. */
export function expectEveryVersionClean(history: DatabaseHistory): void {
  const versions = history.versions();
  if (versions.length === 0)
    throw new Error(`the database watch saw no shard version at all: ${history.describe()}`);
  const problems = versions.flatMap((v) => databaseProblems(v));
  if (problems.length > 0) throw new Error(`the database held what it must not:\n${problems.join("\n")}`);
}

/**
 * Every version of every shard Secret, as a watch delivers them (kubectl get --watch): "never"
 * means no version, not just the last one.
 */
export class KubectlWatch {
  readonly lines: string[] = [];
  /** What kubectl said on stderr (why a watch ended early). */
  stderr = "";
  private readonly child: ChildProcess;
  private buffer = "";

  private constructor(child: ChildProcess) {
    this.child = child;
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      this.buffer += chunk;
      for (let i = this.buffer.indexOf("\n"); i >= 0; i = this.buffer.indexOf("\n")) {
        this.lines.push(this.buffer.slice(0, i));
        this.buffer = this.buffer.slice(i + 1);
      }
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => (this.stderr += chunk));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * `kubectl get <args> --watch -o jsonpath=<template>`; the template should end with a newline, and
   * separate fields by spaces (a watch prints through a tabwriter, which pads TABs).
   */
  static start(args: string[], template: string): KubectlWatch {
    const child = spawn(inject("kubectlPath"), ["get", ...args, "--watch", "-o", `jsonpath=${template}`], {
      env: { ...process.env, KUBECONFIG: inject("kubeconfig") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new KubectlWatch(child);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGTERM");
    await exited;
  }
}

/** Every shard version the database namespace ever held, decoded. */
export class DatabaseHistory {
  private readonly watch: KubectlWatch;

  private constructor(watch: KubectlWatch) {
    this.watch = watch;
  }

  static start(namespace: string): DatabaseHistory {
    return new DatabaseHistory(
      KubectlWatch.start(
        ["secrets", "-n", namespace, "-l", "app.kubernetes.io/component=passdb"],
        '{.metadata.name}{" "}{.data}{"\\n"}',
      ),
    );
  }

  describe(): string {
    return `${this.watch.lines.length} lines (${JSON.stringify(this.watch.lines.slice(0, 3)).slice(0, 600)}), ${this.watch.running ? "running" : "ended"}, stderr ${JSON.stringify(this.watch.stderr)}`;
  }

  /** Each version as shard files. */
  versions(): ShardFile[][] {
    return this.watch.lines.flatMap((line) => {
      const [shard, data] = line.split(/ +/);
      if (!shard || !data) return [];
      const parsed = JSON.parse(data) as Record<string, string>;
      return [
        Object.entries(parsed).map(([key, value]) => ({
          shard,
          key,
          text: Buffer.from(value, "base64").toString("utf8"),
        })),
      ];
    });
  }

  stop(): Promise<void> {
    return this.watch.stop();
  }
}

/**
 * Every password any credential Secret of the tenants' namespaces ever held (a watch on them), and
 * which Secret held it: what the plaintext scan looks for everywhere else.
 */
export class PasswordRecorder {
  private readonly watches: KubectlWatch[];
  /** Passwords the tests chose themselves (a forger's), also never to appear anywhere else. */
  readonly chosen = new Map<string, string>();

  private constructor(watches: KubectlWatch[]) {
    this.watches = watches;
  }

  static start(namespaces: string[]): PasswordRecorder {
    return new PasswordRecorder(
      namespaces.map((ns) =>
        KubectlWatch.start(
          ["secrets", "-n", ns],
          '{.metadata.namespace}/{.metadata.name}{" "}{.data.password}{"\\n"}',
        ),
      ),
    );
  }

  /** password → the Secrets (namespace/name) that held it. */
  passwords(): Map<string, Set<string>> {
    const byPassword = new Map<string, Set<string>>();
    const add = (password: string, secret: string) => {
      if (password.length < 8) return; // a test's junk value, too short to search for
      const holders = byPassword.get(password) ?? new Set<string>();
      holders.add(secret);
      byPassword.set(password, holders);
    };
    for (const watch of this.watches)
      for (const line of watch.lines) {
        const [secret, encoded] = line.split(/ +/);
        if (secret && encoded) add(Buffer.from(encoded, "base64").toString("utf8"), secret);
      }
    for (const [password, secret] of this.chosen) add(password, secret);
    return byPassword;
  }

  async stop(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.stop()));
  }
}

/** A recorder in front of Dovecot's doveadm HTTP API: every kick mask the operator sends, forwarded. */
export class DoveadmRecorder {
  readonly url: string;
  readonly masks: string[] = [];
  private readonly server: Server;

  private constructor(server: Server, url: string) {
    this.server = server;
    this.url = url;
  }

  static async start(target: string): Promise<DoveadmRecorder> {
    const port = await freePort();
    const holder: { recorder?: DoveadmRecorder } = {};
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        try {
          for (const command of JSON.parse(body) as [string, { mask?: string[] }, string][])
            if (command[0] === "kick") holder.recorder!.masks.push(...(command[1].mask ?? []));
        } catch {
          holder.recorder!.masks.push(`(not JSON: ${body})`);
        }
        const headers: Record<string, string> = {};
        for (const name of ["authorization", "content-type"])
          if (typeof req.headers[name] === "string") headers[name] = req.headers[name];
        fetch(target, { method: req.method ?? "POST", headers, body: body || undefined })
          .then(async (answer) => res.writeHead(answer.status).end(await answer.text()))
          .catch(() => res.writeHead(502).end());
      });
    });
    await new Promise<void>((resolve) => server.listen(port, loopback, resolve));
    holder.recorder = new DoveadmRecorder(server, `http://${loopback}:${port}/doveadm/v1`);
    return holder.recorder;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}

/** Dovecot's answer to a refused login; an internal failure would not count as a refusal. */
const refused = { imap: /^a1 NO \[AUTHENTICATIONFAILED\]/, pop3: /^-ERR \[AUTH\]/, smtp: /^535 / };
const accepted = { imap: /^a1 OK/, pop3: /^\+OK/, smtp: /^235 / };
export type Protocol = keyof typeof refused;

/** Logs in as a mail client does; resolves with whether Dovecot accepted, throws on anything else. */
export async function login(
  mail: MailServer,
  protocol: Protocol,
  user: string,
  password: string,
): Promise<boolean> {
  const endpoint: Endpoint = { host: mail.host, port: mail.ports[protocol] };
  const result =
    protocol === "imap"
      ? await imapLogin(endpoint, user, password)
      : protocol === "pop3"
        ? await pop3Login(endpoint, user, password)
        : await smtpAuth(endpoint, user, password);
  if (accepted[protocol].test(result.response)) return true;
  if (refused[protocol].test(result.response)) return false;
  throw new Error(`${protocol} login as ${user}: unexpected answer ${JSON.stringify(result.response)}`);
}

export interface SecurityEnvOptions {
  tenants: number;
  shards: number;
  /** Debian's Dovecot (and Postfix) on loopback, reading the database; auth debug logs each passdb step. */
  dovecot?: { authDebug?: boolean };
  /** The MailDomain's spec beyond `namespaces` (which admits every tenant). */
  domainSpec?: (tenants: Tenant[]) => Record<string, unknown>;
  /** Operator settings by environment (DEVICEPASS_*), so an older operator without them still starts. */
  operatorEnv?: Record<string, string>;
  /** The operator reaches the API server through a recording proxy (harness/fault-proxy.ts, no faults). */
  apiProxy?: boolean;
}

export interface SecurityEnv {
  readonly admin: Kubectl;
  /** The MailDomain's name: a random domain of this test file. */
  domain: string;
  tenants: Tenant[];
  passdbNamespace: string;
  operatorNamespace: string;
  mail: MailServer | undefined;
  doveadm: DoveadmRecorder | undefined;
  operator: OperatorProcess;
  passwords: PasswordRecorder;
  database: DatabaseHistory;
  /** The operator's API requests so far (with apiProxy). */
  apiRequests(): ProxiedRequest[];
  /** (Re)starts the operator process with `shards` shards and extra environment. */
  startOperator(options?: { shards?: number; env?: Record<string, string> }): Promise<void>;
  stopOperator(): Promise<void>;
  /** Every operator process's log of this test file, restarts included. */
  operatorLogs(): Promise<string>;
  /** Applies the MailDomain: spec.namespaces admits every tenant, plus `extra`. */
  applyDomain(extra?: Record<string, unknown>): Promise<void>;
}

/** The group Dovecot's auth workers run as: the volume's files get it, like a pod's fsGroup. */
function dovecotGid(): number {
  return Number(execFileSync("id", ["-g", "dovecot"], { encoding: "utf8" }).trim());
}

/** Small argon2id parameters keep the tests fast (Dovecot verifies them all the same). */
export const testArgon2Env = {
  DEVICEPASS_ARGON2_MEMORY_KIB: "1024",
  DEVICEPASS_ARGON2_ITERATIONS: "1",
  DEVICEPASS_ARGON2_PARALLELISM: "1",
};

/**
 * Registers beforeAll/afterAll for a test file: tenants, a database and an operator namespace,
 * the aggregated roles, the MailDomain, optionally Dovecot, the operator process and the recorders.
 */
export function useSecurityEnv(prefix: string, options: SecurityEnvOptions): SecurityEnv {
  const admin = adminKubectl();
  const disposers: (() => Promise<unknown>)[] = [];
  let operator: OperatorProcess | undefined;
  /** The logs of the operator processes stopped so far (a restart is a new process). */
  const earlierLogs: string[] = [];
  let shards = options.shards;
  let env: Record<string, string> = {};
  const release = `${prefix}-${hex()}`;
  const state = {
    mail: undefined as MailServer | undefined,
    doveadm: undefined as DoveadmRecorder | undefined,
    passwords: undefined as PasswordRecorder | undefined,
    database: undefined as DatabaseHistory | undefined,
    volume: undefined as SecretVolume | undefined,
    proxy: undefined as { proxy: FaultProxy; kubeconfig: string } | undefined,
  };
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not running`);
    return value;
  };

  const securityEnv: SecurityEnv = {
    admin,
    domain: `${prefix}-${hex()}.test`,
    tenants: [],
    passdbNamespace: "",
    operatorNamespace: "",
    get mail() {
      return state.mail;
    },
    get doveadm() {
      return state.doveadm;
    },
    get operator() {
      return need(operator, "the operator");
    },
    get passwords() {
      return need(state.passwords, "the password recorder");
    },
    get database() {
      return need(state.database, "the database history");
    },
    apiRequests: () => need(state.proxy, "the API proxy").proxy.requests,
    startOperator: async (next = {}) => {
      await securityEnv.stopOperator();
      shards = next.shards ?? shards;
      env = { ...env, ...next.env };
      const args = [
        "--kubeconfig", state.proxy?.kubeconfig ?? inject("kubeconfig"),
        ...securityEnv.tenants.flatMap((t) => ["--namespace", t.namespace]),
        "--passdb-namespace", securityEnv.passdbNamespace,
        "--passdb-shards", String(shards),
        "--log-level", "debug",
        ...(state.mail && state.doveadm
          ? ["--doveadm-url", state.doveadm.url, "--doveadm-api-key-file", state.mail.doveadmApiKeyFile]
          : []),
      ]; // prettier-ignore
      const environment: Record<string, string> = {
        ...testArgon2Env,
        DEVICEPASS_OPERATOR_NAMESPACE: securityEnv.operatorNamespace,
        ...options.operatorEnv,
        ...env,
      };
      operator = await OperatorProcess.startRunning({ name: prefix, args, env: environment });
    },
    stopOperator: async () => {
      if (operator) earlierLogs.push(await operator.logText());
      await operator?.dispose();
      operator = undefined;
    },
    operatorLogs: async () => [...earlierLogs, (await operator?.logText()) ?? ""].join("\n"),
    applyDomain: async (extra = {}) => {
      await admin.ok(
        ["apply", "-f", "-"],
        yamlOf([
          {
            apiVersion,
            kind: "MailDomain",
            metadata: { name: securityEnv.domain },
            spec: {
              namespaces: securityEnv.tenants.map((t) => t.namespace),
              ...options.domainSpec?.(securityEnv.tenants),
              ...extra,
            },
          },
        ]),
      );
    },
  };

  beforeAll(async () => {
    const namespace = async (name: string) => {
      const ns = await withNamespace(admin, name);
      disposers.push(ns.dispose);
      return ns.name;
    };
    const roles = await installAggregatedRoles(admin, release);
    disposers.push(() => admin.run(["delete", "clusterrole", ...roles, "--ignore-not-found"]));
    for (let i = 0; i < options.tenants; i++) {
      const ns = await namespace(`${prefix}-t${i + 1}`);
      const user = `${prefix}-editor-${i + 1}-${hex()}`;
      await admin.ok(["create", "rolebinding", "editor", "-n", ns, "--clusterrole=edit", `--user=${user}`]);
      const kubectl = asUser(admin, user);
      securityEnv.tenants.push({
        namespace: ns,
        user,
        kubectl,
        apply: (objects) => kubectl.run(["apply", "-n", ns, "-f", "-"], yamlOf(objects)),
      });
    }
    securityEnv.passdbNamespace = await namespace(`${prefix}-passdb`);
    securityEnv.operatorNamespace = await namespace(`${prefix}-operator`);
    // kube-controller-manager aggregates the chart's roles into edit: the tenants may now write devices.
    await eventually(async () => {
      for (const t of securityEnv.tenants) {
        const can = await admin.run([
          "auth",
          "can-i",
          "create",
          "maildevices",
          "-n",
          t.namespace,
          `--as=${t.user}`,
        ]);
        if (can.stdout.trim() !== "yes") throw new Error(`${t.user} may not create maildevices yet`);
      }
    }, 60_000);
    disposers.push(() => admin.run(["delete", "maildomain", securityEnv.domain, "--ignore-not-found"]));
    await securityEnv.applyDomain();

    state.passwords = PasswordRecorder.start([
      ...securityEnv.tenants.map((t) => t.namespace),
      securityEnv.passdbNamespace,
      securityEnv.operatorNamespace,
    ]);
    state.database = DatabaseHistory.start(securityEnv.passdbNamespace);
    if (options.apiProxy) {
      const proxy = await FaultProxy.start(inject("kubeconfig"));
      const dir = await mkdtemp(join(tmpdir(), "devicepass-security-"));
      const kubeconfig = join(dir, "kubeconfig");
      await proxy.writeKubeconfig(kubeconfig);
      state.proxy = { proxy, kubeconfig };
      disposers.push(() => rm(dir, { recursive: true, force: true }));
    }
    if (options.dovecot) {
      state.volume = await SecretVolume.start({
        kubeconfig: inject("kubeconfig"),
        namespace: securityEnv.passdbNamespace,
        defaultMode: 0o440,
        fsGroup: dovecotGid(),
      });
      state.mail = await MailServer.start({
        passdbDir: state.volume.dir,
        authDebug: options.dovecot.authDebug ?? false,
      });
      state.doveadm = await DoveadmRecorder.start(state.mail.doveadmUrl);
    }
    await securityEnv.startOperator();
  });

  afterEach(async ({ task }) => {
    if (task.result?.state !== "fail") return;
    const tail = (text: string | undefined, n = 40) => (text ?? "").split("\n").slice(-n).join("\n");
    console.error(`--- operator log\n${tail(await operator?.logText())}`);
    if (state.mail) console.error(`--- dovecot log\n${tail(await state.mail.dovecotLog())}`);
  });

  afterAll(async () => {
    await securityEnv.stopOperator();
    await state.doveadm?.stop();
    await state.mail?.stop();
    await state.volume?.stop();
    await state.passwords?.stop();
    await state.database?.stop();
    await state.proxy?.proxy.stop();
    for (const dispose of disposers.reverse()) await dispose();
  });

  return securityEnv;
}

/** Reads a device's Secret (as the cluster administrator): its password and annotations. */
export async function readSecret(
  admin: Kubectl,
  namespace: string,
  name: string,
): Promise<{ password: string; annotations: Record<string, string>; data: Record<string, string> }> {
  const secret = await admin.json<{ metadata: { annotations?: Record<string, string> }; data?: Record<string, string> }>([
    "get", "secret", name, "-n", namespace,
  ]); // prettier-ignore
  const data = Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
  );
  return { password: data.password ?? "", annotations: secret.metadata.annotations ?? {}, data };
}

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

export async function condition(
  admin: Kubectl,
  kind: string,
  namespace: string,
  name: string,
  type = "Ready",
): Promise<Condition | undefined> {
  const object = await admin.json<{ status?: { conditions?: Condition[] } }>([
    "get",
    kind,
    name,
    "-n",
    namespace,
  ]);
  return object.status?.conditions?.find((c) => c.type === type);
}

export interface EventRecord {
  reason: string;
  type: string;
  message: string;
  involvedObject: { kind: string; name: string };
}

export async function eventsIn(admin: Kubectl, namespace: string): Promise<EventRecord[]> {
  return (await admin.json<{ items: EventRecord[] }>(["get", "events", "-n", namespace])).items;
}

/** Waits until every MailDevice named is Ready (as the cluster administrator sees it). */
export async function waitReady(admin: Kubectl, namespace: string, devices: string[]): Promise<void> {
  await admin.ok([
    "wait", "-n", namespace, "--for=condition=Ready", "--timeout=90s",
    ...devices.map((d) => `maildevice/${d}`),
  ]); // prettier-ignore
}

/**
 * Where a plaintext password shows up that it must not: the operator's log, events and status in
 * every namespace of the test, the database (every version), and any Secret other than the
 * device's own credential Secret. Returns one line per finding (empty: none).
 */
export async function plaintextLeaks(env: SecurityEnv): Promise<string[]> {
  const passwords = env.passwords.passwords();
  if (passwords.size === 0) return ["no password was recorded at all: the scan would prove nothing"];
  const places: { where: string; text: string }[] = [];
  places.push({ where: "the operator's log", text: await env.operatorLogs() });
  const namespaces = [...env.tenants.map((t) => t.namespace), env.passdbNamespace, env.operatorNamespace];
  for (const ns of namespaces) {
    places.push({
      where: `events in ${ns}`,
      text: await env.admin.ok(["get", "events", "-n", ns, "-o", "json"]),
    });
    places.push({
      where: `MailAddresses and MailDevices in ${ns}`,
      text: await env.admin.ok(["get", "mailaddresses,maildevices", "-n", ns, "-o", "json"]),
    });
  }
  places.push({
    where: "the MailDomain",
    text: await env.admin.ok(["get", "maildomain", env.domain, "-o", "json"]),
  });
  for (const [i, version] of env.database.versions().entries())
    for (const f of version)
      places.push({ where: `database version ${i} ${f.shard}/${f.key}`, text: f.text });
  const leaks: string[] = [];
  for (const ns of namespaces) {
    const secrets = await env.admin.json<{
      items: { metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string> }; data?: Record<string, string> }[];
    }>(["get", "secrets", "-n", ns]); // prettier-ignore
    for (const s of secrets.items) {
      const holder = `${ns}/${s.metadata.name}`;
      const decoded = Object.entries(s.data ?? {}).map(([k, v]) => [
        k,
        Buffer.from(v, "base64").toString("utf8"),
      ]);
      for (const [password, holders] of passwords) {
        for (const [key, value] of decoded) {
          const own = key === "password" && holders.has(holder);
          if (!own && value!.includes(password)) leaks.push(`a password is in Secret ${holder}, key ${key}`);
        }
        const meta = JSON.stringify([s.metadata.annotations ?? {}, s.metadata.labels ?? {}]);
        if (meta.includes(password)) leaks.push(`a password is in the metadata of Secret ${holder}`);
      }
    }
  }
  for (const { where, text } of places)
    for (const password of passwords.keys())
      if (text.includes(password)) leaks.push(`a password is in ${where}`);
  return leaks;
}

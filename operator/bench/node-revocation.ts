// `npm run bench:node` (root): how long a deleted device's password keeps working on a real node
// (operator/harness/node.ts), through the two ways Dovecot can read the password database: the
// kubelet's projected Secret volume (at its default syncFrequency and at 10s) and the passdb-sync
// sidecar of examples/dovecot/kubernetes/ (an emptyDir it writes from a watch). One cluster: the
// install manifest's operator, the shipped Dovecot with the sidecar and a rootless Dovecot pod with
// the projected volume; each deletion is timed at both at once. Prints a Markdown table and writes
// .bench/node-revocation.json.
import { randomInt } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { imapLogin, type Endpoint } from "../harness/mail-clients.ts";
import { explained } from "../harness/node-diagnostics.ts";
import {
  deployProjectedDovecot,
  deployShippedDovecot,
  shippedDovecot,
  untilLogin,
} from "../harness/node-dovecot.ts";
import { defaultSyncFrequency, NodeCluster, nodeName } from "../harness/node.ts";
import { apiVersion, kinds } from "../src/api/names.ts";
import { KubeClient, type WatchEvent } from "../src/kube/client.ts";
import { resources } from "../src/kube/resources.ts";
import { addressKey } from "../src/passdb/format.ts";
import { percentile } from "./report.ts";

const usage = `Usage: npm run bench:node -- [options]   (as root; docs/real-node.md)

  --samples N              deletions timed per kubelet syncFrequency, at both Dovecots (default 5)
  --sync-frequencies LIST  the kubelet's syncFrequency values, in order (default 1m,10s)
  --sidecar-samples N      further deletions timed at the sidecar's Dovecot only (default 20)
  --out FILE               JSON report (default .bench/node-revocation.json)
`;

const repoRoot = join(import.meta.dirname, "..", "..");
const systemNs = "devicepass-system";
const mailNs = "mail";
const address = "alice";
const user = "alice@example.com";
const shardSecrets = Array.from({ length: 64 }, (_, i) => `devicepass-passdb-${String(i).padStart(2, "0")}`);
/** How often each Dovecot is asked while waiting for the refusal: the measurement's resolution. */
const pollMs = { sidecar: 100, volume: 250 };

const say = (line: string) => process.stderr.write(`[bench:node] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `1m`, `10s`, `1m30s` → ms (the kubelet's duration syntax, as far as a sync period needs it). */
function durationMs(text: string): number {
  const match = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!match || text === "") throw new Error(`not a duration like 1m or 10s: ${text}`);
  return (Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0)) * 1000;
}

interface Sample {
  /** `kubectl delete maildevice` started → the bench's watch saw the shard Secret change. */
  shardMs: number;
  /** … → the start of the first refused login at the sidecar's Dovecot (its answer waits 2 s). */
  sidecarMs: number;
  /** … → the same at the projected volume's Dovecot; absent for sidecar-only samples. */
  volumeMs?: number;
}

/** When the value of one key of the database's shard Secrets last changed, from a watch. */
class ShardWatch {
  private changedAt = 0;
  private readonly values = new Map<string, string | undefined>();
  private readonly abort = new AbortController();
  private readonly running: Promise<void>;

  private constructor(client: KubeClient, key: string, ready: () => void) {
    this.running = (async () => {
      const ref = { ...resources.secrets, namespace: systemNs };
      const list = await client.list<SecretJson>(ref);
      for (const s of list.items) this.values.set(s.metadata.name, s.data?.[key]);
      ready();
      await client
        .watch<SecretJson>(
          ref,
          { resourceVersion: list.metadata.resourceVersion },
          (event: WatchEvent<SecretJson>) => {
            if (event.type !== "ADDED" && event.type !== "MODIFIED") return;
            const value = event.object.data?.[key];
            if (this.values.get(event.object.metadata.name) !== value) this.changedAt = performance.now();
            this.values.set(event.object.metadata.name, value);
          },
          this.abort.signal,
        ) // prettier-ignore
        .catch(() => {});
    })();
  }

  static async start(client: KubeClient, key: string): Promise<ShardWatch> {
    let ready!: () => void;
    const listed = new Promise<void>((resolve) => (ready = resolve));
    const watch = new ShardWatch(client, key, ready);
    await listed;
    await sleep(500); // the watch is established
    return watch;
  }

  /** The first change after `since`, waiting for it up to `timeoutMs`. */
  async changeAfter(since: number, timeoutMs = 60_000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    while (this.changedAt <= since) {
      if (performance.now() > deadline)
        throw new Error(`the shard Secret did not change within ${timeoutMs} ms`);
      await sleep(20);
    }
    return this.changedAt;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }
}

interface SecretJson {
  metadata: { name: string };
  data?: Record<string, string>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      samples: { type: "string", default: "5" },
      "sync-frequencies": { type: "string", default: `${defaultSyncFrequency},10s` },
      "sidecar-samples": { type: "string", default: "20" },
      out: { type: "string", default: join(repoRoot, ".bench", "node-revocation.json") },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  const samples = Number(values.samples);
  const sidecarSamples = Number(values["sidecar-samples"]);
  const syncFrequencies = values["sync-frequencies"].split(",");
  for (const f of syncFrequencies) durationMs(f);

  const started = performance.now();
  const cluster = await NodeCluster.start({ log: say, syncFrequency: syncFrequencies[0] });
  let client: KubeClient | undefined;
  try {
    const k = cluster.kubectl;
    const crds = join(repoRoot, "crds");
    await k.ok(["apply", "--server-side", "-f", crds]);
    await k.ok(["wait", "--for=condition=Established", "--timeout=60s", "-f", crds]);
    for (const ns of [systemNs, mailNs]) {
      await k.ok(["create", "namespace", ns]);
      await k.ok(["label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"]);
    }
    say("installing charts/devicepass-install.yaml");
    await k.ok(["apply", "--server-side", "-f", join(repoRoot, "charts", "devicepass-install.yaml")]);
    await explained(cluster, systemNs, () => k.ok(["rollout", "status", "deployment/devicepass", "-n", systemNs, "--timeout=300s"])); // prettier-ignore
    await k.ok(["apply", "-f", join(repoRoot, "examples", "domain")]);
    await k.ok(["apply", "-n", mailNs, "-f", join(repoRoot, "examples", "mail", "alice.yaml")]);

    say(
      "deploying examples/dovecot/kubernetes/ (Dovecot with passdb-sync) and a Dovecot with the projected volume",
    );
    const sidecar = await explained(cluster, [shippedDovecot.namespace, systemNs], () =>
      deployShippedDovecot(cluster),
    );
    await k.ok(["create", "secret", "generic", "doveadm-api-key", "-n", systemNs, "--from-literal=api-key=bench-node-revocation"]); // prettier-ignore
    const dovecot = cluster.images.dovecot;
    const volume = await explained(cluster, systemNs, () =>
      deployProjectedDovecot(cluster, {
        namespace: systemNs,
        image: dovecot.ref,
        user: dovecot.user,
        configMap: "devicepass-dovecot",
        shardSecrets,
        apiKeySecret: "doveadm-api-key",
        clusterIP: "10.0.0.201",
      }),
    );
    client = await KubeClient.fromKubeconfig(cluster.plane.kubeconfigPath, "devicepass-bench");
    const shard = await ShardWatch.start(client, addressKey(user));

    const createDevices = async (names: string[]): Promise<Map<string, string>> => {
      const manifests = names.map((name) => JSON.stringify({
        apiVersion, kind: kinds.mailDevice.kind, metadata: { name, namespace: mailNs },
        spec: { address, displayName: name, icon: "laptop", protocols: ["imap"] },
      })); // prettier-ignore
      await k.ok(["apply", "-f", "-"], manifests.join("\n"));
      const passwords = new Map<string, string>();
      for (const name of names) {
        await k.ok(["wait", "--for=condition=Ready", `maildevice/${name}`, "-n", mailNs, "--timeout=120s"]);
        const data = await k.ok(["get", "secret", `${name}-mail-credentials`, "-n", mailNs, "-o", "jsonpath={.data.password}"]); // prettier-ignore
        passwords.set(name, Buffer.from(data, "base64").toString());
      }
      return passwords;
    };

    /** Deletes one device and times until the shard changes and each Dovecot refuses its password. */
    const timeDeletion = async (name: string, password: string, atVolume: boolean, syncMs: number) => {
      // A login that works right before: the baseline, and it clears Dovecot's auth penalty of the
      // previous sample's refusal (which would delay the logins that follow).
      for (const endpoint of atVolume ? [sidecar, volume] : [sidecar]) {
        const check = await imapLogin(endpoint, user, password);
        if (!check.ok) throw new Error(`${name}'s password does not work at ${endpoint.host}:${endpoint.port}: ${check.response}`); // prettier-ignore
      }
      const deleteAt = performance.now();
      const refusedAt = async (endpoint: Endpoint, interval: number) =>
        deleteAt + (await untilLogin(endpoint, user, password, false, 3 * syncMs + 60_000, interval));
      const [, sidecarAt, volumeAt] = await Promise.all([
        k.ok(["delete", "maildevice", name, "-n", mailNs, "--wait=false"]),
        refusedAt(sidecar, pollMs.sidecar),
        atVolume ? refusedAt(volume, pollMs.volume) : undefined,
      ]);
      const shardAt = await shard.changeAfter(deleteAt);
      const sample: Sample = { shardMs: shardAt - deleteAt, sidecarMs: sidecarAt - deleteAt };
      if (volumeAt !== undefined) sample.volumeMs = volumeAt - deleteAt;
      return sample;
    };

    const results: { syncFrequency: string; samples: Sample[] }[] = [];
    for (const [phase, syncFrequency] of syncFrequencies.entries()) {
      const syncMs = durationMs(syncFrequency);
      if (phase > 0) {
        say(`restarting the kubelet with syncFrequency ${syncFrequency}`);
        await cluster.restartKubelet(syncFrequency);
        await k.ok(["wait", "--for=condition=Ready", `node/${nodeName}`, "--timeout=120s"]);
      }
      const names = Array.from({ length: samples }, (_, i) => `probe-${syncFrequency}-${i}`);
      const passwords = await createDevices(names);
      // The volume shows new devices only at the kubelet's next sync of the pod, too.
      for (const endpoint of [sidecar, volume])
        for (const [name, password] of passwords) {
          await untilLogin(endpoint, user, password, true, 3 * syncMs + 60_000, 1000).catch(
            (error: Error) => {
              throw new Error(`${name}: ${error.message}`);
            },
          );
        }
      const phaseSamples: Sample[] = [];
      for (const [i, name] of names.entries()) {
        // Deletions land at any phase of the kubelet's sync period.
        await sleep(randomInt(syncMs));
        const sample = await timeDeletion(name, passwords.get(name)!, true, syncMs);
        phaseSamples.push(sample);
        say(`syncFrequency ${syncFrequency}, sample ${i + 1}/${samples}: shard ${ms(sample.shardMs)}, sidecar ${ms(sample.sidecarMs)}, volume ${ms(sample.volumeMs!)}`); // prettier-ignore
      }
      results.push({ syncFrequency, samples: phaseSamples });
    }

    const sidecarOnly: Sample[] = [];
    if (sidecarSamples > 0) {
      const names = Array.from({ length: sidecarSamples }, (_, i) => `probe-sidecar-${i}`);
      // In batches: an address holds at most 20 devices.
      for (let from = 0; from < names.length; from += 10) {
        const batch = names.slice(from, from + 10);
        const passwords = await createDevices(batch);
        for (const password of passwords.values())
          await untilLogin(sidecar, user, password, true, 60_000, 200);
        for (const name of batch) {
          await sleep(randomInt(1000));
          const sample = await timeDeletion(name, passwords.get(name)!, false, 10_000);
          sidecarOnly.push(sample);
          say(`sidecar only, sample ${sidecarOnly.length}/${sidecarSamples}: shard ${ms(sample.shardMs)}, sidecar ${ms(sample.sidecarMs)}`); // prettier-ignore
        }
      }
    }
    await shard.stop();

    const report = {
      startedAt: new Date(Date.now() - (performance.now() - started)).toISOString(),
      seconds: Math.round((performance.now() - started) / 1000),
      kubernetes: (await k.json<{ status: { nodeInfo: { kubeletVersion: string } } }>(["get", "node", nodeName])).status.nodeInfo.kubeletVersion, // prettier-ignore
      pollMs,
      phases: results,
      sidecarOnly,
    };
    await mkdir(join(values.out, ".."), { recursive: true });
    await writeFile(values.out, JSON.stringify(report, null, 2));
    process.stdout.write(formatTable(report));
    say(`done in ${report.seconds} s; JSON in ${values.out}`);
  } finally {
    await client?.close();
    await cluster.stop();
  }
}

const ms = (value: number) =>
  value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
const stats = (values: number[]) =>
  `${ms(percentile(values, 50))} / ${ms(percentile(values, 95))} / ${ms(Math.max(...values))}`;

function formatTable(r: {
  kubernetes: string;
  phases: { syncFrequency: string; samples: Sample[] }[];
  sidecarOnly: Sample[];
}): string {
  const rows: string[] = [
    `Kubernetes ${r.kubernetes}: \`kubectl delete maildevice\` → the first refused IMAP login (p50 / p95 / max)`,
    "",
    "| Dovecot reads the database from | kubelet syncFrequency | samples | shard Secret written | password refused |",
    "| --- | --- | --: | --: | --: |",
  ];
  for (const phase of r.phases) {
    const s = phase.samples;
    rows.push(`| projected Secret volume | ${phase.syncFrequency} | ${s.length} | ${stats(s.map((x) => x.shardMs))} | ${stats(s.map((x) => x.volumeMs!))} |`); // prettier-ignore
  }
  const all = [...r.phases.flatMap((p) => p.samples), ...r.sidecarOnly];
  const frequencies = r.phases.map((p) => p.syncFrequency).join(", ");
  rows.push(`| passdb-sync sidecar (emptyDir) | ${frequencies} (no effect) | ${all.length} | ${stats(all.map((x) => x.shardMs))} | ${stats(all.map((x) => x.sidecarMs))} |`); // prettier-ignore
  return `${rows.join("\n")}\n`;
}

await main();

// Debian's Dovecot (IMAP, POP3, SASL for Postfix, doveadm HTTP API) and Postfix (smtpd with SMTP
// AUTH through Dovecot) on loopback for end-to-end tests, configured with the very files of
// examples/dovecot/ so that the shipped configuration is what the tests prove.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, chown, copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { descendants, ownedTempDir, stopTree } from "./owned-dir.ts";
import { ManagedProcess } from "./process.ts";
import { freePort, loopback } from "./net.ts";

const here = dirname(fileURLToPath(import.meta.url));
/** The shipped Dovecot configuration: the harness runs these files, adapted only in their paths. */
export const exampleDir = join(here, "..", "..", "examples", "dovecot");
const exampleFiles = {
  auth: "devicepass-auth.conf",
  doveadm: "devicepass-doveadm.conf",
  lua: "devicepass-passdb.lua",
} as const;

/** Mail is stored as nobody: Dovecot refuses uid 0 for mail, and nothing here is delivered. */
const mailUid = 65534;
const mailGid = 65534;

const run = promisify(execFile);

export interface MailServerOptions {
  /** The folder Dovecot reads the password database from (a mirrored Secret volume). */
  passdbDir: string;
  /** Progress lines; silent by default. */
  log?: (line: string) => void;
  /** Dovecot's auth_debug: logs each passdb step (never passwords: auth_debug_passwords stays off). */
  authDebug?: boolean;
  /**
   * Mail to these domains is delivered (Postfix → Dovecot LMTP → a Maildir per user), so that a
   * test can read it back over IMAP; any other mail is still thrown away. None by default.
   */
  deliverDomains?: string[];
  /** The Lua passdb's last-login stamp folder (DEVICEPASS_STAMP_DIR); none: no stamps. */
  stampDir?: string;
  /** DEVICEPASS_STAMP_INTERVAL, seconds (the shipped 60 unless given). */
  stampIntervalSeconds?: number;
  /** DEVICEPASS_VERIFIED_CACHE_SIZE (the shipped 4096 unless given; 0: every login verifies). */
  verifiedCacheSize?: number;
  /**
   * Dovecot's auth cache (auth_cache_size, a TTL, and a cache_key on the Lua passdb); off by default
   * (as shipped). Only safe when something flushes an address after each change of its file.
   */
  authCache?: { size: string; ttl: string; cacheKey: string };
}

/** An executable from PATH or the sbin folders (root's PATH may lack them under npm). */
function findExecutable(name: string, hint: string): string {
  const path = (process.env.PATH ?? "").split(":").filter(Boolean);
  for (const dir of [...path, "/usr/sbin", "/sbin", "/usr/local/sbin"]) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} not found: install ${hint} (bash .ci/run does)`);
}

/** Resolves with the first line a TCP server sends, or undefined when it sends none in time. */
async function greeting(port: number, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: loopback, port });
    let text = "";
    const done = (line: string | undefined) => {
      socket.destroy();
      resolve(line);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.on("error", () => done(undefined));
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      const end = text.indexOf("\n");
      if (end >= 0) done(text.slice(0, end).trimEnd());
    });
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Replaces each `from` of a shipped file, which must occur exactly once (so a changed example fails loudly). */
export function adapt(text: string, file: string, replacements: [from: string, to: string][]): string {
  for (const [from, to] of replacements) {
    const count = text.split(from).length - 1;
    if (count !== 1)
      throw new Error(`examples/dovecot/${file}: expected "${from}" once, found it ${count} times`);
    text = text.replace(from, () => to);
  }
  return text;
}

export interface DovecotPorts {
  imap: number;
  pop3: number;
  /** Dovecot's auth service for Postfix (SASL). */
  sasl: number;
  doveadm: number;
  /** Dovecot's LMTP, with deliverDomains only. */
  lmtp?: number;
}

/** Dovecot and Postfix, each in its own temp folder, with their own ports, logs and state. */
export class MailServer {
  readonly host = loopback;
  readonly ports: DovecotPorts & { smtp: number };
  /** `http://127.0.0.1:<port>/doveadm/v1`, for the operator's --doveadm-url. */
  readonly doveadmUrl: string;
  /** The API key file, for the operator's --doveadm-api-key-file. */
  readonly doveadmApiKeyFile: string;
  readonly dovecotDir: string;
  readonly postfixDir: string;
  readonly dovecotConfig: string;
  private readonly processes: ManagedProcess[] = [];
  private stopped = false;
  private deliverDomains: string[] = [];

  private constructor(dovecotDir: string, postfixDir: string, ports: DovecotPorts & { smtp: number }) {
    this.dovecotDir = dovecotDir;
    this.postfixDir = postfixDir;
    this.ports = ports;
    this.doveadmUrl = `http://${loopback}:${ports.doveadm}/doveadm/v1`;
    this.doveadmApiKeyFile = join(dovecotDir, "doveadm-api-key");
    this.dovecotConfig = join(dovecotDir, "dovecot.conf");
  }

  /** Starts Dovecot, then Postfix (whose smtpd gives up without Dovecot's SASL), and waits until both answer. */
  static async start(options: MailServerOptions): Promise<MailServer> {
    const log = options.log ?? (() => {});
    const dovecot = findExecutable("dovecot", "dovecot-core dovecot-imapd dovecot-pop3d dovecot-auth-lua");
    const postfix = findExecutable("postfix", "postfix");
    const ports = {
      imap: await freePort(),
      pop3: await freePort(),
      sasl: await freePort(),
      doveadm: await freePort(),
      smtp: await freePort(),
    };
    const deliverDomains = options.deliverDomains ?? [];
    if (deliverDomains.length > 0 && !existsSync("/usr/lib/dovecot/lmtp"))
      throw new Error("Dovecot's LMTP not found: install dovecot-lmtpd (bash .ci/run does)");
    const server = new MailServer(
      await ownedTempDir("devicepass-dovecot-"),
      await ownedTempDir("devicepass-postfix-"),
      deliverDomains.length > 0 ? { ...ports, lmtp: await freePort() } : ports,
    );
    server.deliverDomains = deliverDomains;
    try {
      await server.startDovecot(dovecot, options);
      log(
        `dovecot ready: imap ${ports.imap}, pop3 ${ports.pop3}, sasl ${ports.sasl}, doveadm ${ports.doveadm}`,
      );
      await server.startPostfix(postfix);
      log(`postfix ready: smtp ${ports.smtp}`);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  private async startDovecot(dovecot: string, options: MailServerOptions): Promise<void> {
    const dir = this.dovecotDir;
    const example = (name: string) => readFile(join(exampleDir, name), "utf8");
    // The auth workers (user dovecot) load the script: a verbatim copy, readable by them.
    await copyFile(join(exampleDir, exampleFiles.lua), join(dir, exampleFiles.lua));
    await chmod(join(dir, exampleFiles.lua), 0o644);
    await writeFile(
      join(dir, exampleFiles.auth),
      adapt(await example(exampleFiles.auth), exampleFiles.auth, [
        ["/etc/dovecot/devicepass/devicepass-passdb.lua", join(dir, exampleFiles.lua)],
        ["DEVICEPASS_PASSDB_DIR=/run/devicepass/passdb", `DEVICEPASS_PASSDB_DIR=${options.passdbDir}`],
        ["DEVICEPASS_STAMP_DIR=/run/devicepass/stamps", `DEVICEPASS_STAMP_DIR=${options.stampDir ?? ""}`],
        ["DEVICEPASS_STAMP_INTERVAL=60", `DEVICEPASS_STAMP_INTERVAL=${options.stampIntervalSeconds ?? 60}`],
        [
          "DEVICEPASS_VERIFIED_CACHE_SIZE=4096",
          `DEVICEPASS_VERIFIED_CACHE_SIZE=${options.verifiedCacheSize ?? 4096}`,
        ],
        ...(options.authCache
          ? ([
              [
                "devicepass-passdb.lua blocking=yes",
                `devicepass-passdb.lua blocking=yes cache_key=${options.authCache.cacheKey}`,
              ],
            ] as [string, string][])
          : []),
      ]),
    );
    await writeFile(
      join(dir, exampleFiles.doveadm),
      adapt(await example(exampleFiles.doveadm), exampleFiles.doveadm, [
        ["</run/devicepass/doveadm/api-key", `<${this.doveadmApiKeyFile}`],
        ["port = 8080", `port = ${this.ports.doveadm}`],
      ]),
    );
    // No trailing newline: Dovecot takes the file's bytes as the key.
    await writeFile(this.doveadmApiKeyFile, randomBytes(24).toString("base64url"), { mode: 0o600 });
    await mkdir(join(dir, "home"));
    await chown(join(dir, "home"), mailUid, mailGid);
    await writeFile(this.dovecotConfig, this.dovecotConf(options));

    const process = new ManagedProcess("dovecot", dovecot, ["-F", "-c", this.dovecotConfig], dir);
    this.processes.push(process);
    await process.start();
    await waitFor("dovecot's IMAP, POP3, SASL and doveadm listeners", async () => {
      await process.assertRunning();
      const [imap, pop3, sasl, doveadm] = await Promise.all([
        greeting(this.ports.imap),
        greeting(this.ports.pop3),
        greeting(this.ports.sasl),
        fetch(this.doveadmUrl, { method: "GET" }).then((r) => r.status, () => 0),
      ]); // prettier-ignore
      if (this.ports.lmtp !== undefined && !(await greeting(this.ports.lmtp))?.startsWith("220")) return false;
      return (
        imap?.startsWith("* OK") === true &&
        pop3?.startsWith("+OK") === true &&
        sasl?.startsWith("VERSION") === true &&
        doveadm !== 0
      );
    }, 30_000); // prettier-ignore
  }

  private dovecotConf(options: MailServerOptions): string {
    const dir = this.dovecotDir;
    return `# Generated by operator/harness/dovecot.ts: a standalone instance for tests, on loopback.
instance_name = devicepass-test-${randomBytes(3).toString("hex")}
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = /dev/stderr
protocols = imap pop3${this.ports.lmtp !== undefined ? " lmtp" : ""}
listen = ${loopback}
# Loopback only: no TLS, and plaintext logins allowed.
ssl = no
disable_plaintext_auth = no
mail_location = maildir:~/Maildir
# The device that logged in, from the passdb's userdb_device field, in every mail process log line.
mail_log_prefix = "%s(%u)<%{userdb:device}>: "
auth_verbose = yes
auth_debug = ${options.authDebug === true ? "yes" : "no"}
# Tests make many failed logins on purpose; the default 2 s delay would only slow them down.
auth_failure_delay = 0
${
  options.authCache
    ? `auth_cache_size = ${options.authCache.size}
auth_cache_ttl = ${options.authCache.ttl}
`
    : ""
}
userdb {
  driver = static
  args = uid=${mailUid} gid=${mailGid} home=${dir}/home/%d/%n${this.ports.lmtp !== undefined ? " allow_all_users=yes" : ""}
}
service imap-login {
  inet_listener imap {
    port = ${this.ports.imap}
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = ${this.ports.pop3}
  }
  inet_listener pop3s {
    port = 0
  }
}
# Postfix authenticates SMTP AUTH here (smtpd_sasl_type = dovecot).
service auth {
  inet_listener sasl {
    port = ${this.ports.sasl}
  }
}
${
  this.ports.lmtp !== undefined
    ? `# Postfix delivers mail of ${this.deliverDomains.join(", ")} here (deliverDomains).
service lmtp {
  inet_listener lmtp {
    address = ${loopback}
    port = ${this.ports.lmtp}
  }
}
`
    : ""
}!include ${join(dir, exampleFiles.auth)}
!include ${join(dir, exampleFiles.doveadm)}
`;
  }

  private async startPostfix(postfix: string): Promise<void> {
    const dir = this.postfixDir;
    const conf = join(dir, "conf");
    await mkdir(conf);
    // postfix check creates the queue's subfolders with Postfix's owners, but not the queue itself.
    await mkdir(join(dir, "queue"));
    await writeFile(join(conf, "main.cf"), this.postfixMain());
    await writeFile(join(conf, "master.cf"), this.postfixMaster());
    await run(postfix, ["-c", conf, "check"]).catch((error: Error & { stderr?: string }) => {
      throw new Error(`postfix check failed: ${error.stderr ?? error.message}`);
    });
    const daemonDir = (await run(postfix.replace(/postfix$/, "postconf"), ["-c", conf, "-h", "daemon_directory"])).stdout.trim(); // prettier-ignore
    // master in the foreground (no -w), so that it stays our child; postlogd writes maillog_file.
    const process = new ManagedProcess("postfix", join(daemonDir, "master"), ["-c", conf], dir);
    this.processes.push(process);
    await process.start();
    await waitFor("postfix's smtpd", async () => {
      await process.assertRunning();
      return (await greeting(this.ports.smtp))?.startsWith("220") === true;
    }, 30_000); // prettier-ignore
  }

  private postfixMain(): string {
    const dir = this.postfixDir;
    return `# Generated by operator/harness/dovecot.ts: smtpd with SMTP AUTH through Dovecot; nothing is delivered.
compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
myhostname = devicepass-test.localhost
mydestination =
inet_interfaces = ${loopback}
inet_protocols = ipv4
alias_maps =
alias_database =
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:${loopback}:${this.ports.sasl}
# Only authenticated clients may send (relay) anywhere.
smtpd_relay_restrictions = permit_sasl_authenticated, reject
# Accepted mail is thrown away: the tests prove authentication, not delivery.
default_transport = discard:devicepass test
relay_transport = discard:devicepass test
local_transport = discard:devicepass test
${
  this.ports.lmtp !== undefined
    ? `# …except mail to these domains, delivered to Dovecot over LMTP for the tests to read back.
virtual_mailbox_domains = ${this.deliverDomains.join(" ")}
virtual_transport = lmtp:inet:${loopback}:${this.ports.lmtp}
`
    : ""
}`;
  }

  private postfixMaster(): string {
    const services = [
      `${loopback}:${this.ports.smtp} inet n - n - - smtpd`,
      "cleanup unix n - n - 0 cleanup",
      "qmgr unix n - n 300 1 qmgr",
      "rewrite unix - - n - - trivial-rewrite",
      "bounce unix - - n - 0 bounce",
      "defer unix - - n - 0 bounce",
      "trace unix - - n - 0 bounce",
      "verify unix - - n - 1 verify",
      "proxymap unix - - n - - proxymap",
      "discard unix - - n - - discard",
      "error unix - - n - - error",
      "retry unix - - n - - error",
      "anvil unix - - n - 1 anvil",
      "scache unix - - n - 1 scache",
      "postlog unix-dgram n - n - 1 postlogd",
      ...(this.ports.lmtp !== undefined ? ["lmtp unix - - n - - lmtp"] : []),
    ];
    return `# Generated by operator/harness/dovecot.ts: no chroot, only what smtpd and a discard delivery need.\n${services.join("\n")}\n`;
  }

  /** Dovecot's log (mail_log_prefix shows each session's device). */
  dovecotLog(): Promise<string> {
    return readFile(join(this.dovecotDir, "dovecot.log"), "utf8").catch(() => "");
  }

  /** Postfix's mail log (maillog_file), then what its master printed. */
  async postfixLog(): Promise<string> {
    const read = (name: string) => readFile(join(this.postfixDir, name), "utf8").catch(() => "");
    return (await read("maillog")) + (await read("postfix.log"));
  }

  /** The real uid of each running auth worker (`auth -w`): the passdb must not run as root. */
  async authWorkerUids(): Promise<number[]> {
    const master = this.processes.find((p) => p.name === "dovecot")?.pid;
    if (master === undefined) return [];
    const uids: number[] = [];
    for (const pid of await descendants(master)) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      if (!/\/auth\0?-w\b|\/auth -w\b/.test(cmdline)) continue;
      const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
      const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
      if (uid !== undefined) uids.push(Number(uid));
    }
    return uids;
  }

  /** Runs doveadm against this instance, e.g. `["who"]`. */
  async doveadm(args: string[]): Promise<string> {
    const doveadm = findExecutable("doveadm", "dovecot-core");
    return (await run(doveadm, ["-c", this.dovecotConfig, ...args])).stdout;
  }

  /** Stops Postfix, then Dovecot, waits for all their processes, and removes both folders. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const process of [...this.processes].reverse()) await stopTree(process);
    await rm(this.postfixDir, { recursive: true, force: true });
    await rm(this.dovecotDir, { recursive: true, force: true });
  }
}

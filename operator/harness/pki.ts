// A throwaway certificate authority for the test control plane: CA, serving and client certificates.
// Node's crypto cannot sign X.509 certificates, so Debian's openssl does the signing.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface KeyPair {
  certFile: string;
  keyFile: string;
}

export interface ClientIdentity extends KeyPair {
  user: string;
  groups: string[];
}

async function openssl(args: string[]): Promise<void> {
  await run("openssl", args, { timeout: 30_000 });
}

const newKeyArgs = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A certificate authority in `dir` that issues the serving certificate and client identities. */
export class CertificateAuthority {
  readonly certFile: string;
  private readonly keyFile: string;
  private serial = 1;

  private readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.certFile = join(dir, "ca.crt");
    this.keyFile = join(dir, "ca.key");
  }

  static async create(dir: string, name: string): Promise<CertificateAuthority> {
    const ca = new CertificateAuthority(dir);
    await openssl([
      "req", "-x509", ...newKeyArgs, "-keyout", ca.keyFile, "-out", ca.certFile,
      "-days", "30", "-subj", `/CN=${name}`,
    ]); // prettier-ignore
    return ca;
  }

  async pem(): Promise<string> {
    return readFile(this.certFile, "utf8");
  }

  /** Issues a certificate for `subject` with the given X.509v3 extensions. */
  private async issue(name: string, subject: string, extensions: string[]): Promise<KeyPair> {
    const keyFile = join(this.dir, `${name}.key`);
    const csrFile = join(this.dir, `${name}.csr`);
    const certFile = join(this.dir, `${name}.crt`);
    const extFile = join(this.dir, `${name}.ext`);
    await writeFile(extFile, extensions.join("\n") + "\n");
    await openssl(["req", ...newKeyArgs, "-keyout", keyFile, "-out", csrFile, "-subj", subject]);
    await openssl([
      "x509", "-req", "-in", csrFile, "-CA", this.certFile, "-CAkey", this.keyFile,
      "-set_serial", String(++this.serial), "-days", "30", "-out", certFile, "-extfile", extFile,
    ]); // prettier-ignore
    return { certFile, keyFile };
  }

  async issueServing(name: string, ipAddresses: string[], dnsNames: string[]): Promise<KeyPair> {
    const altNames = [...ipAddresses.map((ip) => `IP:${ip}`), ...dnsNames.map((dns) => `DNS:${dns}`)];
    return this.issue(name, `/CN=${name}`, [
      "basicConstraints=CA:FALSE",
      "keyUsage=digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      `subjectAltName=${altNames.join(",")}`,
    ]);
  }

  /** A client certificate: Kubernetes reads the user from CN and the groups from O. */
  async issueClient(user: string, groups: string[] = []): Promise<ClientIdentity> {
    const subject = `/CN=${user}` + groups.map((g) => `/O=${g}`).join("");
    const name = `client-${user.replace(/[^a-zA-Z0-9_-]/g, "_")}`;
    const pair = await this.issue(name, subject, [
      "basicConstraints=CA:FALSE",
      "keyUsage=digitalSignature,keyEncipherment",
      "extendedKeyUsage=clientAuth",
    ]);
    return { ...pair, user, groups };
  }
}

/** An RSA key pair for signing service account tokens. */
export async function createServiceAccountKey(dir: string): Promise<KeyPair> {
  const keyFile = join(dir, "sa.key");
  const certFile = join(dir, "sa.pub");
  await openssl(["genrsa", "-out", keyFile, "2048"]);
  await openssl(["rsa", "-in", keyFile, "-pubout", "-out", certFile]);
  return { certFile, keyFile };
}

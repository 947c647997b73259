// Issue 11, findings 5 and 11 (the password length): what the API server and the operator's
// command line refuse before anything runs. Addresses with doveadm's wildcards (`*`, `?`, `%`)
// are refused at admission with the rule's message; a password length of 1 is refused by the
// operator's flag and environment, by the MailDomain's schema and by the chart's values.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { chartDir, helmFor } from "../install-support.ts";
import { apiVersion, mailAddress, useSecurityEnv, waitReady, mailDevice, yamlOf } from "./support.ts";

const env = useSecurityEnv("sec-admit", { tenants: 1, shards: 1 });
const tenant = () => env.tenants[0]!;
const mainScript = join(import.meta.dirname, "..", "..", "src", "main.ts");
const rule = "local part holds only letters, digits, '.', '-' and '_'";

describe("(5) doveadm wildcards in addresses", () => {
  it("are refused at admission (kubectl apply fails), and the message names the rule", async () => {
    const wild = ["*", "a*", "*lice", "?", "al?ce", "%", "a%b", "a*b?c%"];
    for (const [i, local] of wild.entries()) {
      const result = await tenant().apply([mailAddress(`wild-${i}`, `${local}@${env.domain}`)]);
      expect(result.code, `${local}@: ${result.stdout}`).not.toBe(0);
      expect(result.stderr, `${local}@`).toContain(rule);
    }
    // Wildcards in the domain part too.
    const domain = await tenant().apply([mailAddress("wild-domain", `alice@*.${env.domain}`)]);
    expect(domain.code).not.toBe(0);
    expect(domain.stderr).toContain(rule);
    const left = await env.admin.json<{ items: unknown[] }>([
      "get",
      "mailaddresses",
      "-n",
      tenant().namespace,
    ]);
    expect(left.items).toEqual([]);
    // The rule refuses wildcards, not addresses: a plain one with every allowed character issues.
    const plain = await tenant().apply([
      mailAddress("plain", `Mary_Ann.O-Brien@${env.domain}`),
      mailDevice("plain-phone", "plain"),
    ]);
    expect(plain.code, plain.stderr).toBe(0);
    await waitReady(env.admin, tenant().namespace, ["plain-phone"]);
  });
});

/** Runs the operator's entry point; resolves with its exit code and output, or "running" if it did not exit. */
function runOperator(
  args: string[],
  environment: Record<string, string> = {},
): Promise<{ code: number | "running"; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [mainScript, "--kubeconfig", inject("kubeconfig"), "--namespace", tenant().namespace,
        "--passdb-namespace", env.passdbNamespace, ...args], // prettier-ignore
      { env: { ...process.env, ...environment }, timeout: 20_000, killSignal: "SIGKILL" },
      (error, _stdout, stderr) => {
        const killed = error !== null && (error as { killed?: boolean }).killed === true;
        resolve({ code: killed ? "running" : (child.exitCode ?? 1), stderr });
      },
    );
  });
}

describe("(11) a password length of 1", () => {
  it("is refused by the operator's --password-length flag and its environment variable", async () => {
    const flag = await runOperator(["--password-length", "1"]);
    expect(flag.code, "the operator started with --password-length 1").not.toBe("running");
    expect(flag.code).not.toBe(0);
    expect(flag.stderr).toContain("--password-length");
    const variable = await runOperator([], { DEVICEPASS_PASSWORD_LENGTH: "1" });
    expect(variable.code, "the operator started with DEVICEPASS_PASSWORD_LENGTH=1").not.toBe("running");
    expect(variable.code).not.toBe(0);
    expect(variable.stderr).toContain("--password-length");
  });

  it("is refused in a MailDomain's devicePolicy and in the chart's values", async () => {
    const domain = await env.admin.run(
      ["apply", "-f", "-"],
      yamlOf([
        {
          apiVersion,
          kind: "MailDomain",
          metadata: { name: `short-${env.domain}` },
          spec: { namespaces: [tenant().namespace], devicePolicy: { passwordLength: 1 } },
        },
      ]),
    );
    expect(domain.code).not.toBe(0);
    expect(domain.stderr).toMatch(/passwordLength/);
    const helm = await helmFor();
    const chart = await helm.run([
      "template", "x", chartDir, "--set", "watchNamespaces={mail},password.length=1", "--kube-version", "1.35.0",
    ]); // prettier-ignore
    expect(chart.code).not.toBe(0);
    expect(chart.stderr).toMatch(/password.length|length/);
  });
});

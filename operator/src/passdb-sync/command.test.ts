import { describe, expect, it } from "vitest";
import { parsePassdbSyncArgs } from "./command.ts";

describe("parsePassdbSyncArgs", () => {
  it("has the operator's database defaults, and the pod's name from POD_NAME", () => {
    const cli = parsePassdbSyncArgs(["--dir", "/run/devicepass/passdb"], { POD_NAME: "dovecot-0" });
    expect(cli).toMatchObject({
      dir: "/run/devicepass/passdb",
      namespace: "devicepass-system",
      secretPrefix: "devicepass-passdb",
      shards: 64,
      fileMode: 0o440,
      stampDir: undefined,
      loginWindowMs: 3_600_000,
      report: { name: "devicepass-passdb-sync", pod: "dovecot-0", minIntervalMs: 1000, maxBytes: 400_000 },
      doveadm: undefined,
      healthAddr: "0",
      logLevel: "info",
    });
  });

  it("reads the operator's environment variables for the database", () => {
    const cli = parsePassdbSyncArgs(["--dir", "/d"], {
      DEVICEPASS_PASSDB_NAMESPACE: "mail-db",
      DEVICEPASS_PASSDB_SECRET_PREFIX: "pdb",
      DEVICEPASS_PASSDB_SHARDS: "8",
      POD_NAME: "p",
    });
    expect(cli).toMatchObject({ namespace: "mail-db", secretPrefix: "pdb", shards: 8 });
  });

  it("turns the report off with an empty name, and takes doveadm with its key file", () => {
    const cli = parsePassdbSyncArgs(
      [
        "--dir=/d",
        "--report-name=",
        "--doveadm-url=http://127.0.0.1:8080/doveadm/v1",
        "--doveadm-api-key-file=/k",
      ],
      {},
    );
    expect(cli.report).toBeUndefined();
    expect(cli.doveadm).toEqual({ url: "http://127.0.0.1:8080/doveadm/v1", apiKeyFile: "/k" });
  });

  it.each([
    [[], /--dir is required/],
    [["--dir=/d", "--shards=0"], /--shards must be a positive integer/],
    [["--dir=/d", "--file-mode=0999"], /--file-mode must be an octal mode/],
    [["--dir=/d", "--file-mode=0200"], /must let someone read/],
    [["--dir=/d", "--doveadm-url=http://x"], /needs --doveadm-api-key-file/],
    [["--dir=/d", "--report-name=Bad_Name"], /--report-name must be a ConfigMap name/],
    [["--dir=/d", "--pod-name=Bad Pod"], /--pod-name must be a pod name/],
    [["--dir=/d", "--log-level=loud"], /--log-level must be one of/],
    [["--dir=/d", "--unknown"], /Unknown option/],
  ])("refuses %j", (args, message) => {
    expect(() => parsePassdbSyncArgs(args, { POD_NAME: "p" })).toThrow(message);
  });
});

// The command line: operator configuration, leader election, shutdown and log level flags, and their
// defaults in and out of a pod.
import { describe, expect, it } from "vitest";
import { defaultConfig, defaults, parseCommandLine, usage } from "./config.ts";

const inPod = { KUBERNETES_SERVICE_HOST: "10.0.0.1", POD_NAMESPACE: "devicepass-system" };

describe("leader election flags", () => {
  it("is off outside a pod (a developer's run never waits for a Lease) and on inside one", () => {
    expect(parseCommandLine([], {}).leaderElection).toEqual({
      enabled: false,
      namespace: "devicepass-system",
      name: "devicepass-leader",
    });
    expect(parseCommandLine(["--passdb-namespace", "mail-db"], {}).leaderElection.namespace).toBe("mail-db");
    expect(parseCommandLine([], inPod).leaderElection).toEqual({
      enabled: true,
      namespace: "devicepass-system",
      name: "devicepass-leader",
    });
  });

  it("takes --leader-elect, --no-leader-elect and Go's --leader-elect=true|false", () => {
    expect(parseCommandLine(["--leader-elect"], {}).leaderElection.enabled).toBe(true);
    expect(parseCommandLine(["--leader-elect=true"], {}).leaderElection.enabled).toBe(true);
    expect(parseCommandLine(["--no-leader-elect"], inPod).leaderElection.enabled).toBe(false);
    expect(parseCommandLine(["--leader-elect=false"], inPod).leaderElection.enabled).toBe(false);
    expect(parseCommandLine([], { ...inPod, DEVICEPASS_LEADER_ELECT: "false" }).leaderElection.enabled).toBe(
      false,
    );
    expect(() => parseCommandLine([], { DEVICEPASS_LEADER_ELECT: "yes" })).toThrow(/true or false/);
  });

  it("names the Lease and its namespace", () => {
    const cli = parseCommandLine(
      ["--leader-election-namespace", "ops", "--leader-election-id", "mail-leader"],
      inPod,
    );
    expect(cli.leaderElection).toEqual({ enabled: true, namespace: "ops", name: "mail-leader" });
  });
});

describe("shutdown and logging flags", () => {
  it("waits 30 s for reconciles in flight unless told otherwise", () => {
    expect(parseCommandLine([], {}).gracefulShutdownMs).toBe(30_000);
    expect(parseCommandLine(["--graceful-shutdown-timeout", "5"], {}).gracefulShutdownMs).toBe(5000);
    expect(() => parseCommandLine(["--graceful-shutdown-timeout", "soon"], {})).toThrow(/seconds/);
  });

  it("takes pino's levels and refuses others with the list", () => {
    expect(parseCommandLine(["--log-level", "debug"], {}).logLevel).toBe("debug");
    expect(parseCommandLine([], { DEVICEPASS_LOG_LEVEL: "warn" }).logLevel).toBe("warn");
    expect(() => parseCommandLine(["--log-level", "verbose"], {})).toThrow(/trace, debug, info/);
  });
});

describe("operator configuration flags", () => {
  it("has production defaults: all namespaces, OWASP argon2id, 24 characters, a MailDomain required", () => {
    const cli = parseCommandLine([], {});
    expect(cli.config).toEqual(defaultConfig());
    expect(cli.config).toMatchObject({
      namespaces: undefined,
      operatorNamespace: "devicepass-system",
      passwordLength: 24,
      argon2: { memoryCost: 19456, timeCost: 2, parallelism: 1 },
      requireMailDomain: true,
      maxDevicesPerAddress: 20,
      sealKeySecret: { namespace: "devicepass-system", name: "devicepass-seal-key" },
      minRotationIntervalMs: 10_000,
      suspensionGraceMs: 86_400_000,
      doveadm: undefined,
    });
    expect(cli).toMatchObject({ metricsAddr: "0", healthAddr: "0", logLevel: "info" });
  });

  it("keeps the seal key in the operator's own namespace, the pod's in a pod", () => {
    expect(parseCommandLine([], inPod).config.sealKeySecret).toEqual({
      namespace: "devicepass-system",
      name: "devicepass-seal-key",
    });
    expect(parseCommandLine(["--passdb-namespace", "mail-db"], inPod).config).toMatchObject({
      operatorNamespace: "devicepass-system",
      passdbNamespace: "mail-db",
    });
    expect(parseCommandLine(["--seal-key-secret", "ops/key"], {}).config.sealKeySecret).toEqual({
      namespace: "ops",
      name: "key",
    });
    expect(() => parseCommandLine(["--seal-key-secret", "key"], {})).toThrow(
      "--seal-key-secret must be NAMESPACE/NAME",
    );
  });

  it("shows every flag and its default in the usage text, from the one table", () => {
    expect(usage).toContain(`--passdb-shards N`);
    expect(usage).toContain(`(default: ${defaults.passdbShards})`);
    expect(usage).toContain("--min-rotation-interval D");
    expect(usage).toContain("--no-require-mail-domain");
  });

  it("takes durations as Kubernetes spells them", () => {
    expect(parseCommandLine(["--suspension-grace", "1h30m"], {}).config.suspensionGraceMs).toBe(5_400_000);
    expect(parseCommandLine(["--min-rotation-interval", "0s"], {}).config.minRotationIntervalMs).toBe(0);
    expect(() => parseCommandLine(["--suspension-grace", "soon"], {})).toThrow(
      "--suspension-grace must be a duration",
    );
  });

  it("takes flags, repeatable namespaces, and DEVICEPASS_* environment fallbacks", () => {
    const cli = parseCommandLine(
      [
        "--namespace",
        "a",
        "--namespace",
        "b",
        "--passdb-shards",
        "8",
        "--no-require-mail-domain",
        "--doveadm-url",
        "http://d/doveadm/v1",
        "--doveadm-api-key-file",
        "/k",
      ],
      { DEVICEPASS_PASSWORD_LENGTH: "32", DEVICEPASS_PASSDB_NAMESPACE: "mail" },
    );
    expect(cli.config).toMatchObject({
      namespaces: ["a", "b"],
      passdbShards: 8,
      passwordLength: 32,
      passdbNamespace: "mail",
      requireMailDomain: false,
      doveadm: { url: "http://d/doveadm/v1", apiKeyFile: "/k", repeatAfterMs: 0 },
    });
    expect(parseCommandLine([], { DEVICEPASS_REQUIRE_MAIL_DOMAIN: "false" }).config.requireMailDomain).toBe(
      false,
    );
  });

  it("refuses bad values with a message that names the flag", () => {
    expect(() => parseCommandLine(["--passdb-shards", "0"], {})).toThrow(
      "--passdb-shards must be a positive integer from 1 to 256",
    );
    expect(() => parseCommandLine(["--password-length", "1"], {})).toThrow(
      "--password-length must be a positive integer from 12 to 128",
    );
    expect(() => parseCommandLine(["--doveadm-url", "http://x"], {})).toThrow(
      "--doveadm-url needs --doveadm-api-key-file",
    );
    expect(() =>
      parseCommandLine(
        ["--default-client-settings", '{"imap":{"host":"h","port":0,"security":"SSL/TLS"}}'],
        {},
      ),
    ).toThrow("--default-client-settings");
    expect(() => parseCommandLine(["--bogus"], {})).toThrow();
  });
});

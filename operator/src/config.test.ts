// The command line's leader election, shutdown and log level flags, and their defaults in and out of a pod.
import { describe, expect, it } from "vitest";
import { parseCommandLine } from "./config.ts";

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

// Issue 11, finding 11 (the rest): a tenant makes the operator work in a loop. A rotation storm
// (a new rotate value several times a second) gets at most one password per
// --min-rotation-interval (4 s here); a device whose Secret name is taken by a Secret devicepass
// does not own (SecretConflict) is looked at again less and less often, not every 10 s for ever.
// The operator reaches the API server through a recording proxy, so its requests can be counted.
import { beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support.ts";
import {
  KubectlWatch,
  condition,
  credentialSecret,
  eventsIn,
  mailAddress,
  mailDevice,
  plaintextLeaks,
  rotateAnnotation,
  useSecurityEnv,
  waitReady,
} from "./support.ts";

const intervalSeconds = 4;
const env = useSecurityEnv("sec-rot", {
  tenants: 1,
  shards: 1,
  apiProxy: true,
  operatorEnv: { DEVICEPASS_MIN_ROTATION_INTERVAL: `${intervalSeconds}s` },
});
const tenant = () => env.tenants[0]!;
let conflictCreated = 0;

beforeAll(async () => {
  // The name the device wants is taken by a Secret of the tenant's own.
  await tenant().kubectl.ok([
    "create",
    "secret",
    "generic",
    "taken",
    "-n",
    tenant().namespace,
    "--from-literal=k=v",
  ]);
  const applied = await tenant().apply([
    mailAddress("alice", `alice@${env.domain}`),
    mailDevice("alice-phone", "alice"),
    mailDevice("conflicted", "alice", { secretName: "taken" }),
  ]);
  expect(applied.code, applied.stderr).toBe(0);
  conflictCreated = performance.now();
  await waitReady(env.admin, tenant().namespace, ["alice-phone"]);
});

describe("(11) a rotation storm on one device", () => {
  it("issues at most one password per --min-rotation-interval, and acts on the last value", async () => {
    const secret = credentialSecret("alice-phone");
    const versions = KubectlWatch.start(
      ["secret", secret, "-n", tenant().namespace],
      `{.data.password}{" "}{.metadata.annotations.mail\\.devicepass\\.io/generated-at}{"\\n"}`,
    );
    try {
      let last = "";
      for (let i = 0; i < 32; i++) {
        last = `storm-${Date.now()}-${i}`;
        await tenant().kubectl.ok([
          "annotate", "maildevice", "alice-phone", "-n", tenant().namespace, `${rotateAnnotation}=${last}`, "--overwrite",
        ]); // prettier-ignore
        await new Promise((r) => setTimeout(r, 250));
      }
      // The last value is acted on, once its turn comes.
      await eventually(async () => {
        const device = await env.admin.json<{ status?: { lastRotateValue?: string } }>([
          "get", "maildevice", "alice-phone", "-n", tenant().namespace,
        ]); // prettier-ignore
        expect(device.status?.lastRotateValue).toBe(last);
      }, 60_000);
      await waitReady(env.admin, tenant().namespace, ["alice-phone"]);
      await new Promise((r) => setTimeout(r, 1000)); // the watch's last lines
      const passwords: { password: string; generatedAt: number }[] = [];
      for (const line of versions.lines) {
        const [password, generatedAt] = line.split(/ +/);
        if (!password || !generatedAt || passwords.at(-1)?.password === password) continue;
        passwords.push({ password, generatedAt: Date.parse(generatedAt) });
      }
      expect(passwords.length, "the storm rotated at all").toBeGreaterThan(1);
      // generated-at has whole seconds: consecutive passwords at least the interval apart, less one second.
      for (let i = 1; i < passwords.length; i++)
        expect(
          passwords[i]!.generatedAt - passwords[i - 1]!.generatedAt,
          `password ${i}`,
        ).toBeGreaterThanOrEqual((intervalSeconds - 1) * 1000);
      const rotated = (await eventsIn(env.admin, tenant().namespace)).filter(
        (e) => e.reason === "Rotated" && e.involvedObject.name === "alice-phone",
      );
      expect(rotated.length).toBeLessThanOrEqual(passwords.length - 1);
    } finally {
      await versions.stop();
    }
  });
});

describe("(11) a SecretConflict", () => {
  it("is reported, and re-checked with a growing backoff", async () => {
    expect(await condition(env.admin, "maildevice", tenant().namespace, "conflicted")).toMatchObject({
      status: "False",
      reason: "SecretConflict",
    });
    const checks = () =>
      env
        .apiRequests()
        .filter(
          (r) =>
            r.at >= conflictCreated &&
            r.method === "GET" &&
            r.path === `/api/v1/namespaces/${tenant().namespace}/secrets/taken`,
        )
        .map((r) => r.at);
    // A fixed period would never leave a gap this long; an exponential backoff soon does.
    await eventually(
      () => {
        const times = checks();
        const gaps = times.slice(1).map((t, i) => t - times[i]!);
        expect(
          gaps.some((g) => g >= 15_000),
          `gaps ${gaps.map((g) => Math.round(g)).join(", ")} ms`,
        ).toBe(true);
        return Promise.resolve();
      },
      90_000,
      1_000,
    );
    const times = checks();
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // From a second on (below it, the reconcile's own time blurs the doubling), each gap at least as long.
    for (let i = 1; i < gaps.length; i++)
      if (gaps[i - 1]! >= 1_000) expect(gaps[i]!, `gap ${i}`).toBeGreaterThanOrEqual(gaps[i - 1]! * 0.9);
    // The tenant's Secret was never touched.
    const taken = await env.admin.json<{ data: Record<string, string>; metadata: { labels?: Record<string, string> } }>([
      "get", "secret", "taken", "-n", tenant().namespace,
    ]); // prettier-ignore
    expect(taken.data).toEqual({ k: Buffer.from("v").toString("base64") });
    expect(taken.metadata.labels ?? {}).toEqual({});
  });

  it("leaks no plaintext password into a log line, event, status, database version or other Secret", async () => {
    expect(await plaintextLeaks(env)).toEqual([]);
  });
});

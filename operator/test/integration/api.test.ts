// The API as kubectl shows it: field documentation in `kubectl explain`, short names, categories.
import { describe, expect, it } from "vitest";
import { adminKubectl } from "../support.ts";

const kubectl = adminKubectl();

describe("kubectl explain", () => {
  it.each([
    ["maildevice.spec.icon", "Icon shown for the device."],
    ["maildevice.spec.protocols", "Protocols the password is valid for"],
    ["maildevice.status.rotationCount", "How many times the password was regenerated"],
    ["mailaddress.spec.address", "The mail address, e.g. alice@example.com"],
    ["mailaddress.spec.clientSettings.smtp.security", "SSL/TLS (implicit TLS) or STARTTLS"],
    ["maildomain.spec.namespaceSelector", "Namespaces whose labels match this label selector"],
  ])("documents %s", async (path, text) => {
    expect(await kubectl.ok(["explain", path])).toContain(text);
  });
});

describe("discovery", () => {
  it("serves the kinds under their short names and the devicepass category", async () => {
    const resources = await kubectl.ok(["api-resources", "--api-group=mail.devicepass.io", "-o", "wide"]);
    expect(resources).toMatch(/maildevices\s+mdev\s+mail\.devicepass\.io\/v1alpha1\s+true\s+MailDevice/);
    expect(resources).toMatch(/maildomains\s+mdom\s+mail\.devicepass\.io\/v1alpha1\s+false\s+MailDomain/);
    expect((await kubectl.run(["get", "devicepass", "-A"])).code).toBe(0);
  });
});

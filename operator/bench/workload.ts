// The bench's workload: N MailDevices spread over A MailAddresses, created as fast as a client
// with a few dozen requests in flight can.
import { apiVersion, kinds, rotateAnnotation } from "../src/api/names.ts";
import { pool } from "../harness/pool.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { named, resources } from "../src/kube/resources.ts";

export const addressName = (i: number) => `addr-${String(i).padStart(3, "0")}`;
export const deviceName = (i: number) => `dev-${String(i).padStart(5, "0")}`;
const domain = "bench.example.com";
const icons = ["phone", "tablet", "laptop", "desktop", "watch", "server", "other"] as const;

export function mailAddress(namespace: string, i: number) {
  return {
    apiVersion,
    kind: kinds.mailAddress.kind,
    metadata: { name: addressName(i), namespace },
    spec: {
      address: `user-${String(i).padStart(3, "0")}@${domain}`,
      clientSettings: {
        imap: { host: `imap.${domain}`, port: 993, security: "SSL/TLS" },
        smtp: { host: `smtp.${domain}`, port: 587, security: "STARTTLS" },
      },
    },
  };
}

/** Device i belongs to address i mod `addresses`; every third one has a user, every fifth is SMTP only. */
export function mailDevice(namespace: string, i: number, addresses: number) {
  return {
    apiVersion,
    kind: kinds.mailDevice.kind,
    metadata: { name: deviceName(i), namespace },
    spec: {
      address: addressName(i % addresses),
      displayName: `Bench device ${i}`,
      icon: icons[i % icons.length],
      ...(i % 3 === 0 ? { user: { name: `User ${i}`, email: `person-${i}@${domain}` } } : {}),
      ...(i % 5 === 0 ? { protocols: ["smtp"] } : {}),
    },
  };
}

/** The cluster administrator's part: a MailDomain admitting the bench's namespace. */
export async function createMailDomain(client: KubeClient, namespace: string): Promise<void> {
  await client.create(resources.mailDomains, {
    apiVersion,
    kind: kinds.mailDomain.kind,
    metadata: { name: domain },
    spec: { namespaces: [namespace] },
  });
}

export async function createNamespace(client: KubeClient, name: string): Promise<void> {
  await client.create(resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name } });
}

/** Creates the addresses, then the devices, `concurrency` requests at a time. */
export async function createWorkload(
  client: KubeClient,
  namespace: string,
  { devices, addresses, concurrency = 32 }: { devices: number; addresses: number; concurrency?: number },
): Promise<void> {
  const ns = { namespace };
  await pool(
    Array.from({ length: addresses }, (_, i) => i),
    concurrency,
    (i) => client.create({ ...resources.mailAddresses, ...ns }, mailAddress(namespace, i)),
  );
  await pool(
    Array.from({ length: devices }, (_, i) => i),
    concurrency,
    (i) => client.create({ ...resources.mailDevices, ...ns }, mailDevice(namespace, i, addresses)),
  );
}

/**
 * What `kubectl annotate maildevice NAME mail.devicepass.io/rotate=VALUE --overwrite` sends:
 * a JSON merge patch of metadata.annotations (kubectl reads the object first; this does not).
 */
export function rotate(client: KubeClient, namespace: string, name: string, value: string): Promise<unknown> {
  return client.mergePatch(
    named(resources.mailDevices, namespace, name),
    { metadata: { annotations: { [rotateAnnotation]: value } } },
    "kubectl-annotate",
  );
}

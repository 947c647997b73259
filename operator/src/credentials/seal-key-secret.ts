// The operator's seal key lives in a Secret of its own namespace (never a tenant's, never the
// database namespace the mail server reads): read at start, created with a random key when missing.
import { components, labels, managedByValue } from "../api/names.ts";
import type { KubeClient } from "../kube/client.ts";
import { isAlreadyExists, isNotFound } from "../kube/errors.ts";
import type { SecretObject } from "../kube/objects.ts";
import { inNamespace, named, resources } from "../kube/resources.ts";
import { SealKey, sealKeyBytes } from "./seal.ts";

const dataKey = "key";

function keyOf(secret: SecretObject, where: string): SealKey {
  const key = Buffer.from(secret.data?.[dataKey] ?? "", "base64");
  if (key.length < sealKeyBytes)
    throw new Error(
      `the seal key Secret ${where} holds no key of at least ${sealKeyBytes} bytes under "${dataKey}"`,
    );
  return new SealKey(key);
}

/** The seal key from Secret namespace/name, created if it does not exist yet. */
export async function loadSealKey(
  client: KubeClient,
  secret: { namespace: string; name: string },
): Promise<SealKey> {
  const where = `${secret.namespace}/${secret.name}`;
  const ref = named(resources.secrets, secret.namespace, secret.name);
  try {
    return keyOf(await client.get<SecretObject>(ref), where);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  const fresh = SealKey.generate();
  try {
    const created = await client.create<SecretObject>(inNamespace(resources.secrets, secret.namespace), {
      apiVersion: "v1",
      kind: "Secret",
      type: "Opaque",
      metadata: {
        name: secret.name,
        namespace: secret.namespace,
        labels: { [labels.managedBy]: managedByValue, [labels.component]: components.sealKey },
        annotations: {
          "mail.devicepass.io/purpose":
            "devicepass's seal over credential records. Deleting it makes every record unverifiable: every password is then re-issued.",
        },
      },
      data: { [dataKey]: fresh.export() },
    });
    return keyOf(created, where);
  } catch (error) {
    if (!isAlreadyExists(error)) throw error;
    return keyOf(await client.get<SecretObject>(ref), where); // another replica was first
  }
}

import { describe, expect, it } from "vitest";
import { labels, rotateAnnotation, secretAnnotations } from "../api/names.ts";
import type { SecretObject } from "../kube/objects.ts";
import { cachedCredentialSecret, cachedMailObject } from "./cached-objects.ts";

describe("cachedCredentialSecret", () => {
  it("keeps devicepass's labels, annotations and data keys and the owner, and nothing a tenant added", () => {
    const owner = {
      apiVersion: "mail.devicepass.io/v1alpha1",
      kind: "MailDevice",
      name: "d",
      uid: "u",
      controller: true,
    };
    const secret: SecretObject = {
      apiVersion: "v1",
      kind: "Secret",
      type: "kubernetes.io/basic-auth",
      metadata: {
        name: "d-mail-credentials",
        namespace: "team",
        uid: "s",
        resourceVersion: "7",
        creationTimestamp: "2026-12-07T00:00:00Z",
        labels: { [labels.component]: "credentials", [labels.device]: "d", "team.example/cost-center": "42" },
        annotations: {
          [secretAnnotations.passwordHash]: "h",
          "kubectl.kubernetes.io/last-applied-configuration": "{…a whole object…}",
        },
        ownerReferences: [owner],
      },
      data: { username: "dQ==", password: "cA==", "imap-host": "aA==", "huge-blob": "A".repeat(100_000) },
    };
    expect(cachedCredentialSecret(secret)).toEqual({
      type: "kubernetes.io/basic-auth",
      metadata: {
        name: "d-mail-credentials",
        namespace: "team",
        uid: "s",
        resourceVersion: "7",
        labels: { [labels.component]: "credentials", [labels.device]: "d" },
        annotations: { [secretAnnotations.passwordHash]: "h" },
        ownerReferences: [owner],
      },
      data: { username: "dQ==", password: "cA==", "imap-host": "aA==" },
    });
  });
});

describe("cachedMailObject", () => {
  it("drops other tools' annotations and keeps devicepass's", () => {
    const device = {
      metadata: {
        name: "d",
        uid: "u",
        resourceVersion: "1",
        creationTimestamp: "2026-12-07T00:00:00Z",
        annotations: { [rotateAnnotation]: "1", "kubectl.kubernetes.io/last-applied-configuration": "{}" },
      },
      spec: { displayName: "Phone" },
    };
    expect(cachedMailObject(device)).toEqual({
      ...device,
      metadata: { ...device.metadata, annotations: { [rotateAnnotation]: "1" } },
    });
    const plain = { metadata: { name: "a", uid: "u", resourceVersion: "1", creationTimestamp: "x" } };
    expect(cachedMailObject(plain)).toBe(plain); // nothing to drop: the same object
  });
});

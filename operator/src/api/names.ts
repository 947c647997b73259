// The API group, kinds, annotations, labels and finalizers of devicepass: the one place they are spelled.
export const group = "mail.devicepass.io";
export const version = "v1alpha1";
export const apiVersion = `${group}/${version}`;

export const kinds = {
  mailAddress: {
    kind: "MailAddress",
    plural: "mailaddresses",
    singular: "mailaddress",
    shortNames: ["maddr"],
  },
  mailDevice: { kind: "MailDevice", plural: "maildevices", singular: "maildevice", shortNames: ["mdev"] },
  mailDomain: { kind: "MailDomain", plural: "maildomains", singular: "maildomain", shortNames: ["mdom"] },
} as const;

/** A changed value of this annotation rotates the password (of a device, or of every device of an address). */
export const rotateAnnotation = `${group}/rotate`;

/**
 * Who created a MailDevice (`request.userInfo.username`), written by the API server's admission
 * policy at creation and never changed (install/admission.ts); shown in the device list and as
 * "who invited" on the portal. For display only: devicepass never decides anything by it.
 */
export const createdByAnnotation = `${group}/created-by`;

export const labels = {
  managedBy: "app.kubernetes.io/managed-by",
  component: "app.kubernetes.io/component",
  address: `${group}/address`,
  device: `${group}/device`,
} as const;
export const managedByValue = "devicepass";

/** Values of the component label on the objects devicepass writes. */
export const components = {
  /** A device's credential Secret, in the device's namespace. */
  credentials: "credentials",
  /** A shard Secret of the password database, in the database namespace. */
  passdb: "passdb",
  /** The operator's seal key Secret, in the operator's own namespace. */
  sealKey: "seal-key",
  /** A device's invitation link Secret (`<device>-invitation`, delivery Invitation), in the device's namespace. */
  invitationLink: "invitation-link",
} as const;

/** Annotations devicepass writes on a device Secret, together with the password they describe. */
export const secretAnnotations = {
  /** The argon2id hash of the password: what the password database is (re)built from. */
  passwordHash: `${group}/password-hash`,
  /** SHA-256 of the password, to notice a hand-edited password without an argon2 verification. */
  passwordDigest: `${group}/password-sha256`,
  /** The device's rotate annotation value this password was generated for. */
  rotatedFor: `${group}/rotated-for`,
  /** The address's rotate annotation value this password was generated for. */
  addressRotatedFor: `${group}/address-rotated-for`,
  rotationCount: `${group}/rotation-count`,
  generatedAt: `${group}/generated-at`,
  /** The operator's seal over all of the above and the device they belong to (credentials/seal.ts). */
  seal: `${group}/seal`,
  /** On an invitation link Secret: the SHA-256 of the link's token (its record's name). */
  invitationHash: `${group}/invitation-sha256`,
  /** On an invitation link Secret: until when the link can be redeemed. */
  expiresAt: `${group}/expires-at`,
  /** On an invitation link Secret: when the link was e-mailed. */
  sentAt: `${group}/sent-at`,
} as const;

export const finalizers = {
  device: `${group}/revoke-credentials`,
  address: `${group}/revoke-credentials`,
} as const;

/** The default name of the operator's seal key Secret (in the operator's own namespace). */
export const defaultSealKeySecretName = "devicepass-seal-key";

/** The ConfigMap in the database namespace where each passdb-sync sidecar reports what it applied. */
export const passdbSyncReportComponent = "passdb-sync-report";

/** The default name of a device's credential Secret. */
export function defaultSecretName(deviceName: string): string {
  return `${deviceName}-mail-credentials`;
}

/** The Secret holding a device's invitation link (delivery Invitation), key `url`. */
export function invitationSecretName(deviceName: string): string {
  return `${deviceName}-invitation`;
}

/** Invitations (MailDevice delivery Invitation): records and names shared by the operator and the portal. */
export const invitationNames = {
  /** app.kubernetes.io/component of an invitation record (a ConfigMap in the operator's namespace). */
  component: "invitation",
  /** Name prefix of an invitation record; the rest is the hex SHA-256 of the link's token. */
  recordPrefix: "devicepass-invitation-",
  /** Label of a record: the uid of the MailDevice it invites to (to find a device's records). */
  deviceUidLabel: `${group}/device-uid`,
  /** The ConfigMap in the operator's namespace with each admitted domain's client settings. */
  autoconfigConfigMap: "devicepass-autoconfig",
  /** app.kubernetes.io/component of that ConfigMap. */
  autoconfigComponent: "autoconfig",
  /** Annotation of a revoked record: why (Expired shows the person "expired" rather than "withdrawn"). */
  revokedBecauseAnnotation: `${group}/revoked-because`,
  /** The key of the link in the invitation Secret. */
  urlKey: "url",
} as const;

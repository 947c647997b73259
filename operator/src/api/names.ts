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
 * The user that created a MailDevice (`request.userInfo.username`), written by the API server's
 * admission policy at creation and never changed (install/admission.ts). For display only:
 * devicepass never decides anything by it.
 */
export const createdByAnnotation = `${group}/created-by`;

export const labels = {
  managedBy: "app.kubernetes.io/managed-by",
  component: "app.kubernetes.io/component",
  address: `${group}/address`,
  device: `${group}/device`,
} as const;
export const managedByValue = "devicepass";

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
} as const;

export const finalizers = {
  device: `${group}/revoke-credentials`,
  address: `${group}/revoke-credentials`,
} as const;

export const passdbComponent = "passdb";

/** The default name of a device's credential Secret. */
export function defaultSecretName(deviceName: string): string {
  return `${deviceName}-mail-credentials`;
}

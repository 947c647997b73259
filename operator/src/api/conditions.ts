// Condition types and reasons; the reasons double as event reasons.
export const Ready = "Ready";

export const reasons = {
  // MailDevice
  CredentialsReady: "CredentialsReady",
  Publishing: "Publishing",
  AddressNotFound: "AddressNotFound",
  AddressConflict: "AddressConflict",
  AddressDeleting: "AddressDeleting",
  AddressUnsupported: "AddressUnsupported",
  DomainNotFound: "DomainNotFound",
  NamespaceNotAllowed: "NamespaceNotAllowed",
  ProtocolNotAllowed: "ProtocolNotAllowed",
  SecretConflict: "SecretConflict",
  Deleting: "Deleting",
  // MailAddress
  AddressReady: "AddressReady",
  // MailDomain
  DomainReady: "DomainReady",
  // Events about a password
  Issued: "Issued",
  Rotated: "Rotated",
  Reissued: "Reissued",
  PasswordReplaced: "PasswordReplaced",
  Revoked: "Revoked",
  // Cutting sessions (condition SessionsCut on MailAddress)
  SessionsKicked: "SessionsKicked",
  KickFailed: "KickFailed",
} as const;

/** MailAddress condition: were the sessions of a revoked or rotated password cut? */
export const SessionsCut = "SessionsCut";
export type Reason = (typeof reasons)[keyof typeof reasons];

// Condition types and reasons; the reasons double as event reasons.
export const Ready = "Ready";

/** MailAddress condition: were the sessions of a revoked or rotated password cut? */
export const SessionsCut = "SessionsCut";

/**
 * MailDevice condition, where passdb-sync sidecars report: does every Dovecot pod have the
 * device's current password on disk (not only the API server)? Absent where nothing reports.
 */
export const MailServerSynced = "MailServerSynced";

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
  DeviceLimitExceeded: "DeviceLimitExceeded",
  DatabaseFull: "DatabaseFull",
  SecretConflict: "SecretConflict",
  Deleting: "Deleting",
  // MailDevice with delivery Invitation
  InvitationPending: "InvitationPending",
  InvitationSent: "InvitationSent",
  InvitationExpired: "InvitationExpired",
  PortalNotConfigured: "PortalNotConfigured",
  // MailDevice, condition MailServerSynced
  MailServerUpToDate: "MailServerUpToDate",
  MailServerSyncing: "MailServerSyncing",
  // MailAddress
  AddressReady: "AddressReady",
  // MailDomain
  DomainReady: "DomainReady",
  // Events about a password
  Issued: "Issued",
  Rotated: "Rotated",
  Reissued: "Reissued",
  PasswordReplaced: "PasswordReplaced",
  CredentialTampered: "CredentialTampered",
  Suspended: "Suspended",
  Resumed: "Resumed",
  Revoked: "Revoked",
  // Events about an invitation
  InvitationIssued: "InvitationIssued",
  InvitationMailFailed: "InvitationMailFailed",
  InvitationRedeemed: "InvitationRedeemed",
  InvitationReplaced: "InvitationReplaced",
  // Cutting sessions (condition SessionsCut on MailAddress)
  SessionsKicked: "SessionsKicked",
  KickFailed: "KickFailed",
} as const;

export type Reason = (typeof reasons)[keyof typeof reasons];

/**
 * Ready reasons caused by cluster policy, which may be undone (a MailDomain edited by mistake, a
 * namespace relabelled, a lowered device limit): the password stops working at once, but its
 * Secret is kept for the suspension grace period, so a re-admission restores the same password.
 */
export const suspendingReasons: ReadonlySet<Reason> = new Set([
  reasons.DomainNotFound,
  reasons.NamespaceNotAllowed,
  reasons.AddressConflict,
  reasons.ProtocolNotAllowed,
  reasons.DeviceLimitExceeded,
]);

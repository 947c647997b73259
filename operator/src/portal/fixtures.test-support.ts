// An invitation as the portal reads it from a record, for the unit tests of pages, profile and e-mail.
import type { Invitation } from "../invitations/record.ts";

export const invitation: Invitation = {
  device: { namespace: "mail", name: "alice-iphone", uid: "0b5c6a8e-2f6f-4d7e-9e57-6d1c3c3b9a11" },
  displayName: "Alice's <iPhone> & co",
  icon: "phone",
  address: "alice@example.com",
  invitedBy: "admin",
  expiresAt: "2026-12-31T00:00:00.000Z",
  passwordLength: 24,
  argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 },
  clientSettings: {
    imap: { host: "imap.example.com", port: 993, security: "SSL/TLS" },
    pop3: { host: "pop.example.com", port: 995, security: "SSL/TLS" },
    smtp: { host: "smtp.example.com", port: 587, security: "STARTTLS" },
  },
  protocols: ["imap", "pop3", "smtp"],
};

// A cdk8s app declaring the mailbox of examples/mail/ and the domain of examples/domain/ in
// TypeScript: `node examples/cdk8s/main.ts > mail.yaml && kubectl apply -f mail.yaml`.
// In a project of your own, import the constructs from the package: `from "devicepass"`.
import { fileURLToPath } from "node:url";
import { App, Chart } from "cdk8s";
import { MailAddress, MailDevice, MailDomain } from "../../operator/src/constructs/index.ts";

const settings = {
  imap: { host: "imap.example.com", port: 993, security: "SSL/TLS" },
  pop3: { host: "pop.example.com", port: 995, security: "SSL/TLS" },
  smtp: { host: "smtp.example.com", port: 587, security: "STARTTLS" },
} as const;

/** Applied by a cluster administrator: which namespaces may hold addresses of example.com. */
export class ExampleDomain extends Chart {
  constructor(app: App) {
    super(app, "domain");
    new MailDomain(this, "example.com", {
      metadata: { name: "example.com" },
      namespaces: ["default", "mail"],
      namespaceSelector: { matchLabels: { "mail.devicepass.io/domain.example.com": "admitted" } },
      clientSettings: settings,
      devicePolicy: { passwordLength: 24, allowedProtocols: ["imap", "pop3", "smtp"] },
    });
  }
}

/** Alice's mailbox and its three devices, applied by the namespace's users. */
export class AliceMailbox extends Chart {
  constructor(app: App) {
    super(app, "mail");
    const alice = new MailAddress(this, "alice", {
      metadata: { name: "alice" },
      address: "alice@example.com",
      clientSettings: settings,
    });
    new MailDevice(this, "iphone", {
      metadata: { name: "alice-iphone" },
      address: alice,
      displayName: "Alice's iPhone",
      icon: "phone",
    });
    new MailDevice(this, "laptop-bob", {
      metadata: { name: "alice-laptop-bob" },
      address: alice,
      displayName: "Bob's laptop",
      icon: "laptop",
      user: { name: "Bob Martin", email: "bob@example.com" },
    });
    // A scanner that only sends mail: its password works for SMTP and nothing else.
    new MailDevice(this, "printer", {
      metadata: { name: "alice-printer" },
      address: alice,
      displayName: "Office scanner",
      icon: "other",
      protocols: ["smtp"],
      secretName: "office-scanner-mail",
    });
  }
}

export function exampleApp(): App {
  const app = new App();
  new ExampleDomain(app);
  new AliceMailbox(app);
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(exampleApp().synthYaml());

// Typed cdk8s constructs for MailDomain, MailAddress and MailDevice: their props are the zod
// schemas' input types, and the spec is checked against the same schemas when it is declared.
import { ApiObject, type ApiObjectMetadata } from "cdk8s";
import type { Construct } from "constructs";
import { z } from "zod";
import { apiVersion, kinds, labels } from "../api/names.ts";
import {
  mailAddressPattern,
  mailAddressSpecSchema,
  mailDeviceSpecSchema,
  mailDomainSpecSchema,
  type MailAddressSpecInput,
  type MailDeviceSpecInput,
  type MailDomainSpecInput,
} from "../api/schemas.ts";

export interface ObjectProps {
  /** Name, namespace, labels and annotations; the name defaults to cdk8s's unique name. */
  metadata?: ApiObjectMetadata;
}

/**
 * Checks `spec` against its schema and returns it as written: defaults are the API server's to
 * apply, so the synthesized object says what the user said and nothing more.
 */
function checkedSpec<T extends object>(kind: string, id: string, schema: z.ZodType, spec: T): T {
  const result = schema.safeParse(spec);
  if (!result.success) throw new Error(`${kind} ${id}: ${z.prettifyError(result.error)}`);
  return JSON.parse(JSON.stringify(spec)) as T; // drops properties set to undefined
}

// The API server checks mail addresses with a CEL rule (zod cannot see it): check them here too.
const mailAddressRegExp = new RegExp(mailAddressPattern);
function checkAddress(kind: string, id: string, field: string, value: string | undefined): void {
  if (value !== undefined && !mailAddressRegExp.test(value))
    throw new Error(
      `${kind} ${id}: ${field} must be a mail address such as alice@example.com, got "${value}"`,
    );
}

export type MailDomainProps = MailDomainSpecInput & ObjectProps;

/** A mail domain (cluster-scoped, named after the domain): which namespaces may hold its addresses. */
export class MailDomain extends ApiObject {
  constructor(scope: Construct, id: string, props: MailDomainProps) {
    const { metadata, ...spec } = props;
    super(scope, id, {
      apiVersion,
      kind: kinds.mailDomain.kind,
      metadata,
      spec: checkedSpec(kinds.mailDomain.kind, id, mailDomainSpecSchema, spec),
    });
  }
}

export type MailAddressProps = MailAddressSpecInput & ObjectProps;

/** A mailbox whose devices each get their own password. */
export class MailAddress extends ApiObject {
  /** The mail address, e.g. alice@example.com. */
  readonly address: string;

  constructor(scope: Construct, id: string, props: MailAddressProps) {
    const { metadata, ...spec } = props;
    checkAddress(kinds.mailAddress.kind, id, "address", spec.address);
    super(scope, id, {
      apiVersion,
      kind: kinds.mailAddress.kind,
      metadata,
      spec: checkedSpec(kinds.mailAddress.kind, id, mailAddressSpecSchema, spec),
    });
    this.address = spec.address;
  }
}

export type MailDeviceProps = Omit<MailDeviceSpecInput, "address"> &
  ObjectProps & {
    /** The MailAddress (in the same namespace), or its name. */
    address: MailAddress | string;
  };

/** One device of a mail address, with its own generated password in a Secret. */
export class MailDevice extends ApiObject {
  constructor(scope: Construct, id: string, props: MailDeviceProps) {
    const { metadata, address, ...rest } = props;
    const addressName = typeof address === "string" ? address : address.name;
    checkAddress(kinds.mailDevice.kind, id, "user.email", rest.user?.email);
    const spec = checkedSpec(kinds.mailDevice.kind, id, mailDeviceSpecSchema, {
      address: addressName,
      ...rest,
    });
    super(scope, id, {
      apiVersion,
      kind: kinds.mailDevice.kind,
      // The label `kubectl delete maildevices -l mail.devicepass.io/address=…` selects on (the
      // operator adds it too; declaring it keeps GitOps diffs quiet).
      metadata: { ...metadata, labels: { [labels.address]: addressName, ...metadata?.labels } },
      spec,
    });
  }
}

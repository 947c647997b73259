// The portal's access to invitation records: GET one by the name its token gives (no list
// rights needed), and redeem it with one PUT whose resourceVersion is the precondition, so that
// of several portal replicas exactly one redeems a link.
import { isConflict, isNotFound } from "../kube/errors.ts";
import type { KubeClient, ResourceRef } from "../kube/client.ts";
import {
  InvalidInvitationRecord,
  parseInvitationRecord,
  redeemedRecord,
  withoutSetup,
  type ConfigMapObject,
  type InvitationRecord,
  type Redemption,
} from "./record.ts";
import { invitationRecordName } from "./token.ts";

export type Lookup =
  | { kind: "found"; record: InvitationRecord }
  | { kind: "unknown" }
  /** A ConfigMap of that name that is not a readable record: shown to the person as unknown. */
  | { kind: "invalid"; reason: string };

export type RedeemResult =
  | { kind: "redeemed"; record: InvitationRecord }
  /** Someone else changed the record first (another replica redeemed it, or it was revoked). */
  | { kind: "lost"; now: Lookup };

export class InvitationStore {
  private readonly client: KubeClient;
  private readonly namespace: string;

  constructor(client: KubeClient, namespace: string) {
    this.client = client;
    this.namespace = namespace;
  }

  private ref(name: string): ResourceRef {
    return { group: "", version: "v1", plural: "configmaps", namespace: this.namespace, name };
  }

  /** The record of a (well-formed) token. API errors other than NotFound propagate. */
  async lookup(token: string): Promise<Lookup> {
    return this.lookupByName(invitationRecordName(token));
  }

  private async lookupByName(name: string): Promise<Lookup> {
    let configMap: ConfigMapObject;
    try {
      configMap = await this.client.get<ConfigMapObject>(this.ref(name));
    } catch (error) {
      if (isNotFound(error)) return { kind: "unknown" };
      throw error;
    }
    try {
      return { kind: "found", record: parseInvitationRecord(configMap) };
    } catch (error) {
      if (error instanceof InvalidInvitationRecord) return { kind: "invalid", reason: error.message };
      throw error;
    }
  }

  /**
   * Pending → redeemed in one update, preconditioned on the resourceVersion read. A Conflict
   * means another writer came first: the record is read again and returned as it is now.
   */
  async redeem(record: InvitationRecord, redemption: Redemption): Promise<RedeemResult> {
    const name = record.configMap.metadata.name;
    try {
      const written = await this.client.replace<ConfigMapObject>(
        this.ref(name),
        redeemedRecord(record, redemption),
      );
      return { kind: "redeemed", record: parseInvitationRecord(written) };
    } catch (error) {
      if (isConflict(error) || isNotFound(error)) return { kind: "lost", now: await this.lookupByName(name) };
      throw error;
    }
  }

  /**
   * Removes the setup ciphertext of a record once its time is over. A concurrent change wins:
   * whoever looks next (a portal replica, or the operator) removes it then.
   */
  async expireSetup(recordName: string, now: () => Date): Promise<void> {
    const lookup = await this.lookupByName(recordName);
    if (lookup.kind !== "found") return;
    const expiresAt = lookup.record.data.setupExpiresAt;
    if (expiresAt === undefined || Date.parse(expiresAt) > now().getTime()) return;
    try {
      await this.client.replace(this.ref(recordName), withoutSetup(lookup.record));
    } catch (error) {
      if (isConflict(error) || isNotFound(error)) return;
      throw error;
    }
  }
}

// What the chart installs for a passdb-sync sidecar in the user's own Dovecot pods: the sidecar's
// Role and RoleBinding in the password database namespace (rbac.ts passdbSyncRules), the report
// ConfigMap it patches, and optionally the Dovecot pods' ServiceAccount. Only with
// passdbSync.enabled; every value-dependent part through the Wiring.
import { ApiObject, JsonPatch } from "cdk8s";
import * as kplus from "cdk8s-plus-27";
import { Construct } from "constructs";
import { labels as labelNames, passdbSyncReportComponent } from "../api/names.ts";
import { shardName } from "../passdb/format.ts";
import { passdbSyncRules } from "./rbac.ts";
import type { Wiring } from "./wiring.ts";

/** The chart's part for the sidecar; `scope` gets one child, so one template file. */
export function passdbSyncAccess(
  scope: Construct,
  w: Wiring,
  options: {
    labels: Record<string, string>;
    passdbNamespace: string;
    /** Where the Dovecot pods run (and their ServiceAccount is). */
    dovecotNamespace: string;
    /** manifests.ts's: the rules are written whole after cdk8s-plus's typed conversion. */
    patchFinalJson: (object: ApiObject, ...patches: JsonPatch[]) => void;
  },
): void {
  const { labels, passdbNamespace, dovecotNamespace, patchFinalJson } = options;
  const group = new Construct(scope, "passdb-sync");
  const { name } = w.release;
  const serviceAccountName = w.value((v) => v.passdbSync.serviceAccount.name);
  const reportName = w.value((v) => v.passdbSync.reportName);

  w.objectsWhen(
    group,
    (v) => v.passdbSync.enabled && v.passdbSync.serviceAccount.create,
    "and $.Values.passdbSync.enabled $.Values.passdbSync.serviceAccount.create",
    () => {
      new kplus.ServiceAccount(group, "service-account", {
        metadata: { name: serviceAccountName, namespace: dovecotNamespace, labels },
        // The pod mounts the token into the sidecar only (a projected volume): Dovecot never sees it.
        automountToken: false,
      });
    },
  );
  w.objectsWhen(
    group,
    (v) => v.passdbSync.enabled,
    "$.Values.passdbSync.enabled",
    () => {
      const shardNames = w.eachComputed(
        (v) => Array.from({ length: v.passdb.shards }, (_, i) => shardName(v.passdb.secretPrefix, i)),
        "until (int $.Values.passdb.shards)",
        (i) => `printf "%s-%02d" $.Values.passdb.secretPrefix ${i}`,
        (shard) => shard,
      );
      const role = new kplus.Role(group, "role", {
        metadata: { name: `${name}-passdb-sync`, namespace: passdbNamespace, labels },
      });
      patchFinalJson(ApiObject.of(role), JsonPatch.add("/rules", passdbSyncRules(shardNames, reportName)));
      new kplus.RoleBinding(group, "role-binding", {
        metadata: { name: `${name}-passdb-sync`, namespace: passdbNamespace, labels },
        role,
      }).addSubjects(
        kplus.ServiceAccount.fromServiceAccountName(group, "dovecot", serviceAccountName, {
          namespaceName: dovecotNamespace,
        }),
      );
      // Created here, so that the sidecar needs no create right; its pods patch their own keys.
      new kplus.ConfigMap(group, "report", {
        metadata: {
          name: reportName,
          namespace: passdbNamespace,
          labels: { ...labels, [labelNames.component]: passdbSyncReportComponent },
        },
      });
    },
  );
}

// Prometheus metrics, named like controller-runtime's where the meaning is the same.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Metrics } from "./context.ts";
import type { RequestObserver } from "./kube/client.ts";
import type { ControllerMetrics } from "./runtime/controller.ts";
import type { WorkQueue } from "./runtime/queue.ts";

export class OperatorMetrics implements Metrics, ControllerMetrics {
  readonly registry = new Registry();
  private readonly reconcileTotal: Counter<"controller" | "result">;
  private readonly reconcileErrors: Counter<"controller">;
  private readonly reconcileTime: Histogram<"controller">;
  private readonly queueDuration: Histogram<"name">;
  private readonly retries: Counter<"name">;
  private readonly credentials: Counter<"event">;
  private readonly passdbWrites: Counter;
  private readonly passdbShardWrites: Counter;
  private readonly passdbBytes: Counter;
  private readonly passdbEntries: Gauge;
  private readonly passdbLeftOutAddresses: Gauge<"shard">;
  private readonly passdbWriteFailures: Counter<"shard">;
  private readonly kicks: Counter<"result">;
  private readonly requests: Counter<"verb" | "code">;
  readonly leader: Gauge<"name">;
  private readonly queues = new Map<string, WorkQueue>();

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.reconcileTotal = new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller and result.",
      labelNames: ["controller", "result"],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller.",
      labelNames: ["controller"],
      registers,
    });
    this.reconcileTime = new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller.",
      labelNames: ["controller"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.queueDuration = new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in the work queue before being requested.",
      labelNames: ["name"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
      registers,
    });
    this.retries = new Counter({
      name: "workqueue_retries_total",
      help: "Total number of retries handled by the work queue.",
      labelNames: ["name"],
      registers,
    });
    this.credentials = new Counter({
      name: "devicepass_credentials_total",
      help: "Device passwords issued, rotated and revoked.",
      labelNames: ["event"],
      registers,
    });
    this.passdbWrites = new Counter({
      name: "devicepass_passdb_writes_total",
      help: "Shard writes to the password database.",
      registers,
    });
    this.passdbShardWrites = new Counter({
      name: "devicepass_passdb_shard_writes_total",
      help: "Shard Secrets written to the password database.",
      registers,
    });
    this.passdbBytes = new Counter({
      name: "devicepass_passdb_written_bytes_total",
      help: "Bytes of shard data written to the password database.",
      registers,
    });
    this.passdbEntries = new Gauge({
      name: "devicepass_passdb_entries",
      help: "Device entries in the last shard written.",
      registers,
    });
    this.passdbLeftOutAddresses = new Gauge({
      name: "devicepass_passdb_left_out_addresses",
      help: "Addresses a shard had no room for (their devices are DatabaseFull); alert when above 0.",
      labelNames: ["shard"],
      registers,
    });
    this.passdbWriteFailures = new Counter({
      name: "devicepass_passdb_write_failures_total",
      help: "Failed writes of a shard Secret; alert when it keeps rising: rotations and revocations of that shard wait.",
      labelNames: ["shard"],
      registers,
    });
    this.kicks = new Counter({
      name: "devicepass_session_kicks_total",
      help: "Requests to the mail server to cut an address's sessions, by result.",
      labelNames: ["result"],
      registers,
    });
    this.requests = new Counter({
      name: "rest_client_requests_total",
      help: "Number of requests to the Kubernetes API server, by verb and status code.",
      labelNames: ["verb", "code"],
      registers,
    });
    const queues = this.queues;
    new Gauge({
      name: "workqueue_depth",
      help: "Current depth of the work queue.",
      labelNames: ["name"],
      registers,
      collect() {
        for (const [name, queue] of queues) this.set({ name }, queue.depth);
      },
    });
    this.leader = new Gauge({
      name: "leader_election_master_status",
      help: "1 while this replica holds the leader Lease, else 0.",
      labelNames: ["name"],
      registers,
    });
  }

  reconciled(
    controller: string,
    result: "success" | "error" | "requeue_after" | "terminal",
    seconds: number,
  ): void {
    this.reconcileTotal.inc({ controller, result });
    if (result === "error" || result === "terminal") this.reconcileErrors.inc({ controller });
    this.reconcileTime.observe({ controller }, seconds);
  }

  queueWaited(controller: string, seconds: number): void {
    this.queueDuration.observe({ name: controller }, seconds);
  }

  retried(controller: string): void {
    this.retries.inc({ name: controller });
  }

  credential(event: "issued" | "rotated" | "revoked"): void {
    this.credentials.inc({ event });
  }

  passdbWrite(shards: number, entries: number, bytes: number): void {
    this.passdbWrites.inc();
    this.passdbShardWrites.inc(shards);
    this.passdbBytes.inc(bytes);
    this.passdbEntries.set(entries);
  }

  passdbLeftOut(shard: number, addresses: number): void {
    this.passdbLeftOutAddresses.set({ shard: String(shard) }, addresses);
  }

  passdbWriteFailed(shard: number): void {
    this.passdbWriteFailures.inc({ shard: String(shard) });
  }

  kicked(ok: boolean): void {
    this.kicks.inc({ result: ok ? "success" : "error" });
  }

  readonly observeRequest: RequestObserver = (verb, _path, status) => {
    this.requests.inc({ verb, code: String(status) });
  };

  /** Work queue depth is read when scraped, not pushed on every add. */
  watchQueue(name: string, queue: WorkQueue): void {
    this.queues.set(name, queue);
  }
}

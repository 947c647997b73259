// The portal's copy of the autoconfig ConfigMap: one watch on that ConfigMap by name (RBAC get
// and watch of that one name), restarted with backoff whenever it ends.
import type { ClientSettings } from "../api/schemas.ts";
import { parseAutoconfigData } from "../autoconfig/data.ts";
import type { ConfigMapObject } from "../invitations/record.ts";
import type { KubeClient, WatchEvent } from "../kube/client.ts";
import type { Logger } from "../log.ts";
import { backoffDelay } from "../runtime/queue.ts";

export class AutoconfigSource {
  private domains = new Map<string, ClientSettings>();
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  /** True once a watch delivered the current state (or said there is none). */
  synced = false;

  private readonly client: KubeClient;
  private readonly namespace: string;
  private readonly name: string;
  private readonly log: Logger;

  constructor(client: KubeClient, namespace: string, name: string, log: Logger) {
    this.client = client;
    this.namespace = namespace;
    this.name = name;
    this.log = log;
  }

  settingsFor(domain: string): ClientSettings | undefined {
    return this.domains.get(domain.toLowerCase());
  }

  start(): void {
    this.running ??= this.loop();
  }

  private async loop(): Promise<void> {
    for (let attempt = 0; !this.abort.signal.aborted;) {
      try {
        // A watch without a resourceVersion starts with the object as it is (an ADDED event).
        let sawObject = false;
        const opened = this.client.watch<ConfigMapObject>(
          { group: "", version: "v1", plural: "configmaps", namespace: this.namespace },
          { fieldSelector: `metadata.name=${this.name}`, timeoutSeconds: 300, allowWatchBookmarks: false },
          (event: WatchEvent<ConfigMapObject>) => {
            if (event.type === "ADDED" || event.type === "MODIFIED") {
              sawObject = true;
              this.domains = parseAutoconfigData(event.object.data);
            } else if (event.type === "DELETED") this.domains = new Map();
            this.synced = true;
            attempt = 0;
          },
          this.abort.signal,
        );
        // An absent ConfigMap sends no event: the first second without one means "none".
        const quiet = setTimeout(() => {
          if (!sawObject) {
            this.domains = new Map();
            this.synced = true;
          }
        }, 1000);
        const started = Date.now();
        await opened.finally(() => clearTimeout(quiet));
        // A watch that ends at once (a proxy cutting streams) must not turn into a hot loop.
        if (Date.now() - started < 1000) {
          attempt++;
          await new Promise((r) => setTimeout(r, backoffDelay(attempt, { baseMs: 500, maxMs: 30_000 })));
        }
      } catch (error) {
        if (this.abort.signal.aborted) return;
        attempt++;
        const retryInMs = backoffDelay(attempt, { baseMs: 500, maxMs: 30_000 });
        this.log.warn({ err: (error as Error).message, retryInMs }, "autoconfig watch failed; retrying");
        await new Promise((r) => setTimeout(r, retryInMs));
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running?.catch(() => {});
  }
}

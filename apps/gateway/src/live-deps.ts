import type { AuditStore, LogStore, WebhookStore } from '@blixard/db';
import type { Bus } from '@blixard/messaging';
import type { Logger } from '@blixard/telemetry';

/** What the live-jobs routes use (events, logs, webhooks, audit): `GatewayDeps.live`. */
export interface LiveDeps {
  bus: Bus;
  logs: LogStore;
  webhooks: WebhookStore;
  audit: AuditStore;
  logger: Logger;
  /** SSE_HEARTBEAT_MS. */
  sseHeartbeatMs: number;
  /** WEBHOOK_ALLOW_PRIVATE. */
  webhookAllowPrivate: boolean;
  /** Open SSE streams, ended when the gateway stops (an open stream would hold the server open). */
  openStreams: Set<{ end(): void }>;
}

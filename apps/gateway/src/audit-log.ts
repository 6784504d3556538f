import { Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { GATEWAY, GatewayDeps } from './deps';

/** Actions the audit log records. */
export type AuditAction =
  | 'job.submit'
  | 'job.cancel'
  | 'job.retry'
  | 'jobs.retry'
  | 'worker.drain'
  | 'webhook.create'
  | 'webhook.delete'
  | 'queue.update'
  | 'fairness.update'
  | 'key.create'
  | 'key.revoke';

/**
 * Who did what, and when: the one place the gateway's controllers record an action they carried
 * out. "Who" is the caller's API key (id, name and tenant, set by the auth guard, auth.ts), with
 * the remote address; `anonymous` when AUTH_DISABLED.
 */
@Injectable()
export class AuditLog {
  constructor(@Inject(GATEWAY) private readonly deps: GatewayDeps) {}

  /** Records an action that succeeded. A failure to record is logged, never the caller's error. */
  async record(req: Request, action: AuditAction, target: { type: string; id?: string | null }, details: Record<string, unknown> = {}): Promise<void> {
    try {
      const principal = (req as Request & { principal?: { keyName: string; tenant: string } }).principal;
      await this.deps.live.audit.record({
        actor: actorOf(req),
        actorName: principal?.keyName ?? null,
        tenant: principal?.tenant ?? 'default',
        remoteAddress: req.ip ?? req.socket?.remoteAddress ?? null,
        action,
        targetType: target.type,
        targetId: target.id ?? null,
        details,
      });
    } catch (err) {
      this.deps.live.logger.error({ err: String(err), action, targetId: target.id }, 'audit entry not recorded');
    }
  }
}

export function actorOf(req: Request): string {
  const key = (req as Request & { apiKeyId?: unknown }).apiKeyId;
  return typeof key === 'string' && key.length > 0 ? key : 'anonymous';
}

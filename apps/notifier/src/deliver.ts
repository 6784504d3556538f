import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { signWebhook, WEBHOOK_SIGNATURE_HEADER } from '@blixard/contracts';
import type { DeliveryAttemptOutcome, DueDelivery } from '@blixard/db';
import { assertPublicUrl, guardedLookup } from '@blixard/service';

export interface DeliverOptions {
  timeoutMs: number;
  /** WEBHOOK_ALLOW_PRIVATE: otherwise only public addresses are connected to. */
  allowPrivate: boolean;
}

/** The most of a receiver's error answer kept in the attempt's record. */
const ERROR_BODY_BYTES = 512;

/**
 * One HTTP attempt of a delivery: POSTs the CloudEvent (structured mode,
 * `application/cloudevents+json`) signed with the webhook's secret. Any 2xx is success;
 * anything else, a redirect included (never followed), is a failure with its reason. The
 * address is checked when the connection is made (DNS rebinding cannot slip a private address
 * in after the subscription was checked).
 */
export async function deliverWebhook(d: DueDelivery, o: DeliverOptions): Promise<DeliveryAttemptOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const url = new URL(d.url);
    // An IP literal never reaches `lookup`: check it here.
    if (isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0) await assertPublicUrl(url, o.allowPrivate);
    const body = JSON.stringify(d.event);
    const headers = {
      'Content-Type': 'application/cloudevents+json; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(body)),
      'User-Agent': 'Blixard-Webhooks/0.1',
      [WEBHOOK_SIGNATURE_HEADER]: signWebhook(d.secret, body),
      'Blixard-Webhook-Id': d.webhookId,
      'Blixard-Delivery-Id': d.id,
      'Blixard-Delivery-Attempt': String(d.attempt),
      'Blixard-Event-Type': d.eventType,
    };
    const { status, text } = await post(url, body, headers, o);
    const ok = status >= 200 && status < 300;
    return { ok, statusCode: status, error: ok ? null : `HTTP ${status}${text ? `: ${text}` : ''}`, durationMs: elapsed() };
  } catch (err) {
    return { ok: false, statusCode: null, error: (err as Error).message, durationMs: elapsed() };
  }
}

function post(url: URL, body: string, headers: Record<string, string>, o: DeliverOptions): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(url, {
      method: 'POST',
      headers,
      lookup: guardedLookup(o.allowPrivate),
      // No pooling: every attempt resolves (and checks) the address afresh.
      agent: false,
    });
    const timer = setTimeout(() => request.destroy(new Error(`no answer within WEBHOOK_TIMEOUT_MS (${o.timeoutMs} ms)`)), o.timeoutMs);
    request.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    request.once('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < ERROR_BODY_BYTES) chunks.push(chunk);
        size += chunk.length;
      });
      res.once('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES).toString('utf8').trim() });
      });
      res.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    request.end(body);
  });
}

import { FieldError, ValidationError } from './errors';
import { isPlainObject, onlyKnownFields } from './validation';

/** A webhook subscription as `POST /v1/webhooks` takes it. */
export interface WebhookSubscription {
  url: string;
  events: string[];
  secret: string;
}

export const WEBHOOK_LIMITS = {
  urlLength: 2048,
  events: 50,
  secretMin: 16,
  secretMax: 256,
} as const;

/** `*`, an event type, or a prefix of types ending in `.*`; the `dev.blixard.` prefix may be left out. */
export const EVENT_PATTERN = /^(\*|[a-z0-9-]+(\.[a-z0-9-]+)*(\.\*)?)$/;

/**
 * Checks a subscription and collects every problem. `knownTypes` are the event types Blixard
 * publishes: a pattern that matches none of them is a typo, refused. Addresses are checked
 * separately (they need DNS): see `assertPublicUrl` in @blixard/service.
 */
export function validateWebhookSubscription(input: unknown, knownTypes: readonly string[], matches: (pattern: string, type: string) => boolean): WebhookSubscription {
  if (!isPlainObject(input)) throw new ValidationError([{ field: '', message: 'must be an object with url, events and secret' }]);
  const errors: FieldError[] = onlyKnownFields('', input, ['url', 'events', 'secret']);
  const { url, events, secret } = input;
  if (typeof url !== 'string') errors.push({ field: 'url', message: 'is required (a string)' });
  else if (url.length > WEBHOOK_LIMITS.urlLength) errors.push({ field: 'url', message: `must be at most ${WEBHOOK_LIMITS.urlLength} characters` });
  else {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      errors.push({ field: 'url', message: 'is not a URL' });
    }
    if (parsed) {
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') errors.push({ field: 'url', message: 'must be http or https' });
      if (parsed.username || parsed.password) errors.push({ field: 'url', message: 'must not carry credentials (sign with the secret instead)' });
      if (!parsed.hostname) errors.push({ field: 'url', message: 'must name a host' });
    }
  }
  if (!Array.isArray(events) || events.length === 0) errors.push({ field: 'events', message: 'must be a non-empty list of event types (e.g. "dev.blixard.job.completed", "dev.blixard.job.*", "*")' });
  else if (events.length > WEBHOOK_LIMITS.events) errors.push({ field: 'events', message: `may list at most ${WEBHOOK_LIMITS.events} patterns` });
  else {
    events.forEach((e, i) => {
      if (typeof e !== 'string' || !EVENT_PATTERN.test(e)) errors.push({ field: `events[${i}]`, message: 'must be "*", an event type, or a prefix ending in ".*"' });
      else if (!knownTypes.some((t) => matches(e, t))) errors.push({ field: `events[${i}]`, message: `matches no event type Blixard publishes (${knownTypes.join(', ')})` });
    });
  }
  if (typeof secret !== 'string') errors.push({ field: 'secret', message: 'is required: deliveries are signed with it (HMAC-SHA256)' });
  else if (secret.length < WEBHOOK_LIMITS.secretMin || secret.length > WEBHOOK_LIMITS.secretMax) {
    errors.push({ field: 'secret', message: `must be ${WEBHOOK_LIMITS.secretMin}-${WEBHOOK_LIMITS.secretMax} characters` });
  }
  if (errors.length > 0) throw new ValidationError(errors);
  return { url: url as string, events: [...new Set(events as string[])], secret: secret as string };
}

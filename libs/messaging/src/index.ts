export * from './bus';
export * from './codec';
export * from './pull-loop';
export type { JsMsg, Consumer } from '@nats-io/jetstream';
export type { NatsConnection, Msg, Subscription } from '@nats-io/transport-node';
export { consumeMessage, consumeJsMessage, extractTraceContext, instrumentNats, subjectTemplate } from './tracing';
export { openFeed, readFeedNow, type FeedStart } from './feed';

/**
 * `import '@blixard/executor-sdk/register'` — the first line of an executor's main.ts: starts
 * tracing before anything else loads (see @blixard/telemetry/register).
 */
import '@blixard/telemetry/register';

import { z } from 'zod';
import { PayloadError } from '@blixard/executor-sdk';

/**
 * The `kubernetes` payload: one container, run as a `batch/v1` Job per attempt.
 *
 *   { "image": "busybox:1.36", "command": ["sh", "-c"], "args": ["echo hi"],
 *     "env": {"K": "v"}, "workingDir": "/work", "imagePullPolicy": "IfNotPresent",
 *     "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
 *     "nodeSelector": {"disktype": "ssd"},
 *     "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}] }
 *
 * Everything is checked here, before dispatch, in the terms Kubernetes would use, so a payload the
 * API server would refuse is a 400 at submit rather than a failed attempt.
 */

// Kubernetes' own grammars (apimachinery validation), kept to what a payload can name.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const QUALIFIED_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
export const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
/** A quantity such as `250m`, `1.5`, `64Mi`, `2G`, `1e3`. */
const QUANTITY = /^(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE]\d+)?$/;

/** `prefix/name` or `name`, as label keys, node-selector keys and resource names are written. */
export function isQualifiedKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  if (slash === -1) return QUALIFIED_NAME.test(key);
  const prefix = key.slice(0, slash);
  return prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix) && QUALIFIED_NAME.test(key.slice(slash + 1));
}

const MULTIPLIERS: Record<string, number> = {
  m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A quantity's value (for comparing a request with its limit); NaN when it is not one. */
export function quantityValue(q: string): number {
  const m = QUANTITY.exec(q);
  if (!m) return NaN;
  const suffix = m[3] ?? '';
  if (/^[eE]/.test(suffix)) return Number(`${m[1]}${suffix}`);
  return Number(m[1]) * (MULTIPLIERS[suffix] ?? 1);
}

const qualifiedKey = z.string().max(316).refine(isQualifiedKey, 'is not a Kubernetes key ([prefix/]name: letters, digits, -, _, .)');
const quantity = z
  .union([z.number().finite().nonnegative(), z.string().regex(QUANTITY, 'is not a quantity such as "500m", "2", "128Mi"')])
  .transform((v) => String(v));
const resourceList = z.record(qualifiedKey, quantity).refine((r) => Object.keys(r).length <= 32, 'may name at most 32 resources');

export const kubernetesPayloadSchema = z
  .object({
    image: z.string().min(1, 'must name an image').max(1024).regex(/^[^\s]+$/, 'must not contain whitespace'),
    /** The container's entrypoint (replaces the image's ENTRYPOINT). */
    command: z.array(z.string().max(65_536)).max(4096).optional(),
    /** Arguments (replace the image's CMD). */
    args: z.array(z.string().max(65_536)).max(4096).optional(),
    env: z
      .record(z.string().max(1024).regex(ENV_NAME, 'is not an environment variable name'), z.string().max(131_072))
      .refine((e) => Object.keys(e).length <= 1000, 'may hold at most 1000 variables')
      .default({}),
    workingDir: z.string().max(4096).startsWith('/', 'must be an absolute path').optional(),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
    resources: z
      .object({ requests: resourceList.optional(), limits: resourceList.optional() })
      .strict()
      .optional(),
    nodeSelector: z
      .record(qualifiedKey, z.string().max(63).regex(LABEL_VALUE, 'is not a label value (up to 63 letters, digits, -, _, .)'))
      .refine((s) => Object.keys(s).length <= 64, 'may hold at most 64 entries')
      .optional(),
    tolerations: z
      .array(
        z
          .object({
            key: qualifiedKey.optional(),
            operator: z.enum(['Exists', 'Equal']).optional(),
            value: z.string().max(63).regex(LABEL_VALUE, 'is not a label value').optional(),
            effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
            tolerationSeconds: z.number().int().optional(),
          })
          .strict()
          .superRefine((t, ctx) => {
            if (t.operator === 'Exists' && t.value) ctx.addIssue({ code: 'custom', path: ['value'], message: 'must be empty with operator Exists' });
            if (t.key === undefined && t.operator !== 'Exists') ctx.addIssue({ code: 'custom', path: ['operator'], message: 'must be Exists when key is empty' });
            if (t.tolerationSeconds !== undefined && t.effect !== 'NoExecute') {
              ctx.addIssue({ code: 'custom', path: ['tolerationSeconds'], message: 'needs effect NoExecute' });
            }
          }),
      )
      .max(32)
      .optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    // The API server refuses a request above its limit; say so at submit.
    const { requests = {}, limits = {} } = p.resources ?? {};
    for (const [name, req] of Object.entries(requests)) {
      const lim = limits[name];
      if (lim !== undefined && quantityValue(req) > quantityValue(lim)) {
        ctx.addIssue({ code: 'custom', path: ['resources', 'requests', name], message: `${req} is more than its limit ${lim}` });
      }
    }
  });

export type KubernetesPayload = z.infer<typeof kubernetesPayloadSchema>;

/** Parses a payload; throws PayloadError naming every bad field. Pure and fast (gateway-side too). */
export function validateKubernetesPayload(payload: unknown): KubernetesPayload {
  const parsed = kubernetesPayloadSchema.safeParse(payload);
  if (!parsed.success) {
    throw new PayloadError(`kubernetes payload: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

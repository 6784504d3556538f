import { z } from 'zod';
import { PayloadError } from '@blixard/executor-sdk';
import { parseCpu, parseMemory } from './quantities';

/**
 * What a `docker` job runs, and how it becomes a container. Pure: no I/O, so the gateway can ask
 * an executor to validate a payload at submit and the container spec is unit-tested.
 *
 * {
 *   "image": "busybox:1.36",                 // required
 *   "command": ["sh", "-c", "echo hi"],      // optional: the image's CMD otherwise
 *   "entrypoint": ["/bin/tini", "--"],       // optional: the image's ENTRYPOINT otherwise
 *   "env": {"KEY": "value"},
 *   "workingDir": "/work",                   // absolute; the image's WORKDIR otherwise
 *   "user": "1000:1000",
 *   "resources": {"cpu": "500m", "memory": "256Mi"},
 *   "network": "none",                       // one of DOCKER_NETWORKS; the first is the default
 *   "pullPolicy": "if-missing",              // never | if-missing | always
 *   "scratchPath": "/scratch"                // where the per-attempt scratch directory is mounted
 * }
 */

// The image reference grammar of Docker's distribution/reference, without the rarely used parts.
const DOMAIN = String.raw`(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?`;
const PATH_COMPONENT = String.raw`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`;
const TAG = String.raw`[\w][\w.-]{0,127}`;
const DIGEST = String.raw`[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`;
export const IMAGE_REFERENCE = new RegExp(`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::${TAG})?(?:@${DIGEST})?$`);

/** `repo:tag` / `repo@digest` → what the pull API takes. No tag means `latest`, as `docker pull` does. */
export function splitImageReference(image: string): { repository: string; reference: string } {
  const at = image.indexOf('@');
  if (at >= 0) {
    const name = image.slice(0, at);
    const colon = name.lastIndexOf(':');
    const repository = colon > name.lastIndexOf('/') ? name.slice(0, colon) : name;
    return { repository, reference: image.slice(at + 1) };
  }
  const colon = image.lastIndexOf(':');
  if (colon > image.lastIndexOf('/')) return { repository: image.slice(0, colon), reference: image.slice(colon + 1) };
  return { repository: image, reference: 'latest' };
}

const absolutePath = z
  .string()
  .max(4096)
  .regex(/^\/[^\0]*$/, 'must be an absolute path inside the container');

const argv = z.array(z.string().max(65_536).refine((s) => !s.includes('\0'), 'contains a NUL byte')).max(4096);

function quantity(parse: (v: number | string) => number) {
  return z.union([z.number(), z.string().max(64)]).transform((v, ctx) => {
    try {
      return parse(v);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
      return z.NEVER;
    }
  });
}

export const PULL_POLICIES = ['never', 'if-missing', 'always'] as const;
export type PullPolicy = (typeof PULL_POLICIES)[number];

export const dockerPayloadSchema = z
  .object({
    image: z
      .string()
      .min(1, 'must name an image')
      .max(512)
      .regex(IMAGE_REFERENCE, 'is not an image reference (e.g. "busybox:1.36", "registry.example.com/team/app@sha256:...")'),
    command: argv.min(1, 'must name a program when given').optional(),
    entrypoint: argv.optional(),
    env: z.record(z.string().regex(/^[^=\0]+$/, 'not a variable name'), z.string().refine((s) => !s.includes('\0'), 'contains a NUL byte')).default({}),
    workingDir: absolutePath.optional(),
    user: z
      .string()
      .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/, 'must be user, uid, user:group or uid:gid')
      .optional(),
    resources: z
      .object({ cpu: quantity(parseCpu).optional(), memory: quantity(parseMemory).optional() })
      .strict()
      .default({}),
    network: z.string().optional(),
    pullPolicy: z.enum(PULL_POLICIES).default('if-missing'),
    scratchPath: absolutePath.refine((p) => p.replace(/\/+$/, '') !== '', 'must not be the container\'s root').default('/scratch'),
  })
  .strict();

/** A validated payload: resources in engine units, the network decided. */
export type DockerPayload = Omit<z.output<typeof dockerPayloadSchema>, 'resources' | 'network'> & {
  /** NanoCpus and bytes, as the engine takes them. */
  resources: { nanoCpus?: number; memoryBytes?: number };
  network: string;
};

/**
 * Parses a job payload; throws PayloadError naming every bad field. `networks` are the network
 * modes this executor allows (DOCKER_NETWORKS); the first is the default.
 */
export function parseDockerPayload(payload: unknown, networks: readonly string[]): DockerPayload {
  const parsed = dockerPayloadSchema.safeParse(payload);
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  // Checked on the raw value too, so one answer names every bad field.
  const asked = typeof payload === 'object' && payload !== null ? (payload as { network?: unknown }).network : undefined;
  const network = typeof asked === 'string' ? asked : networks[0]!;
  if (!networks.includes(network)) {
    problems.push(`network: ${JSON.stringify(network)} is not allowed on this executor (allowed: ${networks.join(', ')}; see DOCKER_NETWORKS)`);
  }
  if (!parsed.success || problems.length > 0) throw new PayloadError(`docker payload: ${problems.join('; ')}`);
  const { resources, ...rest } = parsed.data;
  return { ...rest, network: network!, resources: { nanoCpus: resources.cpu, memoryBytes: resources.memory } };
}

/** Labels on every container: they link it to its job and attempt, and to the worker that owns it. */
export const LABELS = {
  managed: 'io.blixard.managed',
  jobId: 'io.blixard.job-id',
  attempt: 'io.blixard.attempt',
  workerId: 'io.blixard.worker-id',
  queue: 'io.blixard.queue',
  /** When the attempt started (ISO) and its timeout: what a restarted executor needs to adopt it. */
  startedAt: 'io.blixard.started-at',
  timeoutMs: 'io.blixard.timeout-ms',
} as const;

export interface ContainerSpecInput {
  jobId: string;
  attempt: number;
  queue: string;
  workerId: string;
  startedAt: Date;
  timeoutMs: number | null;
  payload: DockerPayload;
  /** Host directory mounted read-write at `payload.scratchPath`. */
  scratchHostDir: string;
  /** Container path of the parents' results file, for a dependent job. */
  parentsFile?: string;
}

/** The job's reserved `resources` (cpuMillis, memoryMb: placement) as limits where the payload sets none. */
export function withReservedResources(p: DockerPayload, reserved: Record<string, number> = {}): DockerPayload {
  const r = { ...p.resources };
  if (r.nanoCpus === undefined && reserved.cpuMillis) r.nanoCpus = Math.round(reserved.cpuMillis * 1e6);
  if (r.memoryBytes === undefined && reserved.memoryMb) r.memoryBytes = Math.round(reserved.memoryMb * 1024 * 1024);
  return { ...p, resources: r };
}

/** The body of `POST /containers/create` for one attempt. */
export function containerSpec(input: ContainerSpecInput): Record<string, unknown> {
  const p = input.payload;
  const env: Record<string, string> = {
    BLIXARD_JOB_ID: input.jobId,
    BLIXARD_ATTEMPT: String(input.attempt),
    BLIXARD_SCRATCH_DIR: p.scratchPath,
    ...(input.parentsFile ? { BLIXARD_PARENTS_FILE: input.parentsFile } : {}),
    ...p.env,
  };
  const hostConfig: Record<string, unknown> = {
    NetworkMode: p.network,
    Binds: [`${input.scratchHostDir}:${p.scratchPath}:rw`],
    // Blixard owns retries and removal: the engine must neither restart nor auto-remove it
    // (the exit code is read after it stops).
    RestartPolicy: { Name: 'no' },
    AutoRemove: false,
  };
  if (p.resources.nanoCpus !== undefined) hostConfig.NanoCpus = p.resources.nanoCpus;
  if (p.resources.memoryBytes !== undefined) {
    hostConfig.Memory = p.resources.memoryBytes;
    // Equal to Memory: no swap on top of the limit, so the limit is what the job gets.
    hostConfig.MemorySwap = p.resources.memoryBytes;
  }
  return {
    Image: p.image,
    ...(p.command ? { Cmd: p.command } : {}),
    ...(p.entrypoint ? { Entrypoint: p.entrypoint } : {}),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    ...(p.workingDir ? { WorkingDir: p.workingDir } : {}),
    ...(p.user ? { User: p.user } : {}),
    Labels: {
      [LABELS.managed]: 'true',
      [LABELS.jobId]: input.jobId,
      [LABELS.attempt]: String(input.attempt),
      [LABELS.workerId]: input.workerId,
      [LABELS.queue]: input.queue,
      [LABELS.startedAt]: input.startedAt.toISOString(),
      ...(input.timeoutMs === null ? {} : { [LABELS.timeoutMs]: String(input.timeoutMs) }),
    },
    // No TTY: stdout and stderr stay apart (multiplexed log stream). No stdin.
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    HostConfig: hostConfig,
  };
}

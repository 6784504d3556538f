import { jobEvent, Subjects } from '@blixard/contracts';
import type { JobStatus, JobTransitionName } from '@blixard/domain';
import type { Job, Prisma } from './prisma';
import { toJobEventData } from './views';

/** The outbox row of one job transition: its CloudEvent and the subject it is published on. */
export function jobEventRow(
  subjects: Subjects,
  source: string,
  name: JobTransitionName,
  job: Job,
  previous: JobStatus | null,
  withResult = false,
): { subject: string; event: Prisma.InputJsonValue } {
  const event = jobEvent(name, toJobEventData(job, previous, withResult), source, job.updatedAt);
  return { subject: subjects.event('job', name), event: event as unknown as Prisma.InputJsonValue };
}

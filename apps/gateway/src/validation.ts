// The gateway's view of the domain's validation (one import site for the controllers).
export { FieldError, isUuid, JOB_STATUSES, JobStatus, NotFoundError, validateSubmission, ValidationError } from '@blixard/domain';
export { MAX_PAGE_SIZE as MAX_PAGE } from '@blixard/db';

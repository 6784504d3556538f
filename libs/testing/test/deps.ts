// Library imports the tests share.
export { subjects } from '@blixard/contracts';
export { validateSubmission } from '@blixard/domain';

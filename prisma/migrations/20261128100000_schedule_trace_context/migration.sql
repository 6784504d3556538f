-- AlterTable
-- The W3C trace context of the request that created a schedule: each cron fire's trace links to it.
ALTER TABLE "schedules" ADD COLUMN     "trace_context" JSONB;

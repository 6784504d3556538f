-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "placement_deadline_at" TIMESTAMPTZ(3),
ADD COLUMN     "requirements" JSONB,
ADD COLUMN     "wait_reason" TEXT;

-- AlterTable
ALTER TABLE "queues" ADD COLUMN     "last_placed_worker" TEXT,
ADD COLUMN     "placement_policy" TEXT NOT NULL DEFAULT 'binpack';


-- The dispatcher reads ready jobs with requirements in their own list (per fairness key, in
-- priority order); this keeps that list from scanning past the jobs without requirements.
CREATE INDEX "jobs_placed_ready_idx" ON "jobs" ("fairness_key", "priority" DESC, "created_at", "id")
  WHERE "status" = 'PENDING' AND "requirements" IS NOT NULL;

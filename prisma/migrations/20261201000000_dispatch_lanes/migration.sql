-- The dispatcher reads ready jobs per lane: one fairness key's jobs of one queue on one backend, in
-- claim order, jobs without requirements and jobs with them apart (so a head of jobs that fit no
-- worker yet never hides the ones behind them that do). A skip scan over these indexes finds the
-- lanes, so a closed queue or a full backend costs one probe per round, however many jobs wait
-- there; before, a round walked all of a key's jobs to find none it could claim.
CREATE INDEX "jobs_lane_ready_idx" ON "jobs" ("fairness_key", "queue", "backend", "priority" DESC, "created_at", "id")
  WHERE "status" = 'PENDING' AND "requirements" IS NULL;
CREATE INDEX "jobs_placed_lane_ready_idx" ON "jobs" ("fairness_key", "queue", "backend", "priority" DESC, "created_at", "id")
  WHERE "status" = 'PENDING' AND "requirements" IS NOT NULL;
-- Replaced by jobs_placed_lane_ready_idx.
DROP INDEX "jobs_placed_ready_idx";

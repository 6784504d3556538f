-- The dispatcher reads ready jobs without requirements per lane: one fairness key's jobs of one
-- queue on one backend, in claim order. A skip scan over this index finds the lanes, so a closed
-- queue or a full backend costs one probe per round, however many jobs wait there (before, a
-- round walked all of a key's jobs to find none it could claim).
CREATE INDEX "jobs_lane_ready_idx" ON "jobs" ("fairness_key", "queue", "backend", "priority" DESC, "created_at", "id")
  WHERE "status" = 'PENDING' AND "requirements" IS NULL;

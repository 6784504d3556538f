-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "concurrency_key" TEXT,
ADD COLUMN     "fairness_key" TEXT NOT NULL DEFAULT 'default',
ADD COLUMN     "on_parent_failure" TEXT NOT NULL DEFAULT 'cancel',
ADD COLUMN     "schedule_id" UUID;

-- AlterTable
ALTER TABLE "job_attempts" ADD COLUMN     "concurrency_key" TEXT,
ADD COLUMN     "queue" TEXT NOT NULL DEFAULT 'default';

-- CreateTable
CREATE TABLE "job_dependencies" (
    "child_id" UUID NOT NULL,
    "parent_id" UUID NOT NULL,

    CONSTRAINT "job_dependencies_pkey" PRIMARY KEY ("child_id","parent_id")
);

-- CreateTable
CREATE TABLE "queues" (
    "name" TEXT NOT NULL,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "max_concurrency" INTEGER,
    "rate_limit_n" INTEGER,
    "rate_limit_interval_ms" INTEGER,
    "key_concurrency" INTEGER,
    "key_rate_limit_n" INTEGER,
    "key_rate_limit_interval_ms" INTEGER,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "queues_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "fairness_weights" (
    "key" TEXT NOT NULL,
    "weight" INTEGER NOT NULL,

    CONSTRAINT "fairness_weights_pkey" PRIMARY KEY ("key")
);

-- CreateTable
CREATE TABLE "schedules" (
    "id" UUID NOT NULL,
    "name" TEXT,
    "cron" TEXT NOT NULL,
    "timezone" TEXT NOT NULL DEFAULT 'UTC',
    "template" JSONB NOT NULL,
    "overlap" TEXT NOT NULL DEFAULT 'allow',
    "catch_up" TEXT NOT NULL DEFAULT 'none',
    "catch_up_limit" INTEGER NOT NULL DEFAULT 100,
    "paused" BOOLEAN NOT NULL DEFAULT false,
    "next_fire_at" TIMESTAMPTZ(3),
    "last_fire_at" TIMESTAMPTZ(3),
    "last_job_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "schedules_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "job_dependencies_parent_idx" ON "job_dependencies"("parent_id");

-- CreateIndex
CREATE INDEX "schedules_due_idx" ON "schedules"("paused", "next_fire_at");

-- CreateIndex
CREATE INDEX "jobs_fair_ready_idx" ON "jobs"("status", "fairness_key", "priority" DESC, "created_at", "id");

-- CreateIndex
CREATE INDEX "jobs_inflight_idx" ON "jobs"("status", "queue", "concurrency_key");

-- CreateIndex
CREATE INDEX "jobs_schedule_idx" ON "jobs"("schedule_id");

-- CreateIndex
CREATE INDEX "job_attempts_queue_claimed_idx" ON "job_attempts"("queue", "claimed_at");

-- CreateIndex
CREATE INDEX "job_attempts_key_claimed_idx" ON "job_attempts"("queue", "concurrency_key", "claimed_at");

-- AddForeignKey
ALTER TABLE "job_dependencies" ADD CONSTRAINT "job_dependencies_child_id_fkey" FOREIGN KEY ("child_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job_dependencies" ADD CONSTRAINT "job_dependencies_parent_id_fkey" FOREIGN KEY ("parent_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;


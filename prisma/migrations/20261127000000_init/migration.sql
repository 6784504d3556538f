-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "JobStatus" AS ENUM ('BLOCKED', 'SCHEDULED', 'PENDING', 'CLAIMED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "AttemptOutcome" AS ENUM ('RUNNING', 'COMPLETED', 'FAILED', 'TIMED_OUT', 'CANCELLED', 'LEASE_EXPIRED', 'WORKER_LOST');

-- CreateEnum
CREATE TYPE "WorkerStatus" AS ENUM ('ONLINE', 'DRAINING', 'OFFLINE', 'LOST');

-- CreateTable
CREATE TABLE "jobs" (
    "id" UUID NOT NULL,
    "queue" TEXT NOT NULL DEFAULT 'default',
    "backend" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "status" "JobStatus" NOT NULL,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "labels" JSONB NOT NULL DEFAULT '{}',
    "attempt" INTEGER NOT NULL DEFAULT 0,
    "max_attempts" INTEGER NOT NULL DEFAULT 3,
    "timeout_ms" INTEGER,
    "backoff" JSONB NOT NULL DEFAULT '{}',
    "idempotency_key" TEXT,
    "request_hash" TEXT,
    "run_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "worker_id" TEXT,
    "lease_expires_at" TIMESTAMPTZ(3),
    "deadline_at" TIMESTAMPTZ(3),
    "result" JSONB,
    "error" TEXT,
    "error_code" TEXT,
    "exit_code" INTEGER,
    "stdout_tail" TEXT,
    "stderr_tail" TEXT,
    "progress" DOUBLE PRECISION,
    "progress_note" TEXT,
    "trace_context" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "dispatched_at" TIMESTAMPTZ(3),
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "job_attempts" (
    "id" BIGSERIAL NOT NULL,
    "job_id" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,
    "worker_id" TEXT,
    "outcome" "AttemptOutcome" NOT NULL DEFAULT 'RUNNING',
    "error" TEXT,
    "error_code" TEXT,
    "exit_code" INTEGER,
    "duration_ms" INTEGER,
    "stdout_tail" TEXT,
    "stderr_tail" TEXT,
    "result" JSONB,
    "claimed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "job_attempts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "outbox_events" (
    "id" BIGSERIAL NOT NULL,
    "subject" TEXT NOT NULL,
    "event" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "published_at" TIMESTAMPTZ(3),

    CONSTRAINT "outbox_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "workers" (
    "id" TEXT NOT NULL,
    "backend" TEXT NOT NULL,
    "host" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "labels" JSONB NOT NULL DEFAULT '{}',
    "capacity" JSONB NOT NULL DEFAULT '{}',
    "concurrency" INTEGER NOT NULL,
    "running_jobs" JSONB NOT NULL DEFAULT '[]',
    "status" "WorkerStatus" NOT NULL DEFAULT 'ONLINE',
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_heartbeat_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "stopped_at" TIMESTAMPTZ(3),

    CONSTRAINT "workers_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "jobs_ready_idx" ON "jobs"("status", "priority" DESC, "created_at", "id");

-- CreateIndex
CREATE INDEX "jobs_run_at_idx" ON "jobs"("status", "run_at");

-- CreateIndex
CREATE INDEX "jobs_lease_idx" ON "jobs"("status", "lease_expires_at");

-- CreateIndex
CREATE INDEX "jobs_worker_idx" ON "jobs"("worker_id");

-- CreateIndex
CREATE INDEX "jobs_backend_status_idx" ON "jobs"("backend", "status");

-- CreateIndex
CREATE INDEX "jobs_queue_status_idx" ON "jobs"("queue", "status");

-- CreateIndex
CREATE UNIQUE INDEX "jobs_idempotency_key_uq" ON "jobs"("queue", "idempotency_key");

-- CreateIndex
CREATE UNIQUE INDEX "job_attempts_job_attempt_uq" ON "job_attempts"("job_id", "attempt");

-- CreateIndex
CREATE INDEX "outbox_unpublished_idx" ON "outbox_events"("published_at", "id");

-- CreateIndex
CREATE INDEX "workers_status_heartbeat_idx" ON "workers"("status", "last_heartbeat_at");

-- CreateIndex
CREATE INDEX "workers_backend_idx" ON "workers"("backend");

-- AddForeignKey
ALTER TABLE "job_attempts" ADD CONSTRAINT "job_attempts_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;


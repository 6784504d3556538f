-- DropIndex
DROP INDEX "jobs_idempotency_key_uq";

-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "submitted_by" UUID,
ADD COLUMN     "tenant" TEXT NOT NULL DEFAULT 'default';

-- AlterTable
ALTER TABLE "schedules" ADD COLUMN     "tenant" TEXT NOT NULL DEFAULT 'default';

-- AlterTable
ALTER TABLE "webhooks" ADD COLUMN     "fleet_events" BOOLEAN NOT NULL DEFAULT true,
ADD COLUMN     "tenant" TEXT NOT NULL DEFAULT 'default';

-- AlterTable
ALTER TABLE "audit_log" ADD COLUMN     "actor_name" TEXT,
ADD COLUMN     "tenant" TEXT NOT NULL DEFAULT 'default';

-- CreateTable
CREATE TABLE "api_keys" (
    "id" UUID NOT NULL,
    "tenant" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "scopes" TEXT[],
    "prefix" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_prefix_uq" ON "api_keys"("prefix");

-- CreateIndex
CREATE INDEX "api_keys_tenant_idx" ON "api_keys"("tenant", "created_at");

-- CreateIndex
CREATE INDEX "jobs_tenant_idx" ON "jobs"("tenant", "id");

-- CreateIndex
CREATE INDEX "jobs_tenant_status_idx" ON "jobs"("tenant", "status");

-- CreateIndex
CREATE UNIQUE INDEX "jobs_idempotency_key_uq" ON "jobs"("tenant", "queue", "idempotency_key");

-- CreateIndex
CREATE INDEX "audit_log_tenant_idx" ON "audit_log"("tenant", "id");


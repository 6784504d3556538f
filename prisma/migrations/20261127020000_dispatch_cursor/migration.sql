-- CreateTable
CREATE TABLE "dispatch_cursor" (
    "backend" TEXT NOT NULL,
    "fair_key" TEXT,
    "fair_used" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "dispatch_cursor_pkey" PRIMARY KEY ("backend")
);

// Prisma CLI configuration: the JS engine with the pg driver adapter, so that no Rust engine is
// ever downloaded (these machines reach only the npm registry). See ../shared/STACK.md.
import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { PrismaPg } from '@prisma/adapter-pg';

// The schema's datasource reads DATABASE_URL; without it Prisma silently falls back to downloading
// engines, so give generate/diff a default (they never connect).
process.env.DATABASE_URL ??= 'postgresql://postgres@127.0.0.1:5432/blixard';

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join(__dirname, 'schema.prisma'),
  async adapter() {
    return new PrismaPg({ connectionString: process.env.DATABASE_URL });
  },
});

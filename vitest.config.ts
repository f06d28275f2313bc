import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests import the package by its public names, served from the sources.
    alias: [
      { find: /^latchkey$/, replacement: src('index.ts') },
      { find: /^latchkey\/node$/, replacement: src('http/node.ts') },
      {
        find: /^latchkey\/(express|fastify|hono|fetch)$/,
        replacement: src('http/$1.ts'),
      },
      { find: /^latchkey\/stores\/sqlite$/, replacement: src('stores/sqlite.ts') },
      { find: /^latchkey\/stores\/redis$/, replacement: src('stores/redis.ts') },
      { find: /^latchkey\/stores\/postgres$/, replacement: src('stores/postgres.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    coverage: {
      enabled: true,
      provider: 'v8',
      include: ['src/core/**/*.ts'],
      reporter: ['text'],
      thresholds: { lines: 90 },
    },
  },
});

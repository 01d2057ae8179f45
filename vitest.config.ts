import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests send real signals and spawn servers; worker threads would share
    // the runner's process and its signal handlers.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
})

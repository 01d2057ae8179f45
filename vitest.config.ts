import { defineConfig } from 'vitest/config'

// .ci/run sets VITEST_JSON_REPORT to get machine-readable counts from the
// same `npm test` a developer runs.
const json = process.env.VITEST_JSON_REPORT

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Rebuilds dist/ (and the addon) when older than their sources: fixtures run the build.
    globalSetup: ['test/helpers/build-guard.ts'],
    // A private XDG_RUNTIME_DIR per test file, for the control sockets handover run always opens.
    setupFiles: ['test/helpers/runtime-dir-setup.ts'],
    // Tests send real signals and spawn servers; worker threads would share
    // the runner's process and its signal handlers.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 240_000,
    reporters: json ? ['default', 'json'] : ['default'],
    outputFile: json ? { json } : undefined,
  },
})

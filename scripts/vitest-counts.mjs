// Usage: node scripts/vitest-counts.mjs <vitest json report>
// Prints "passed failed skipped" from vitest's JSON reporter output. A file
// that failed to load counts as one failure even with no test in it.
import { readFileSync } from 'node:fs'

const r = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const failed = r.numFailedTests + (r.numFailedTestSuites > 0 && r.numFailedTests === 0 ? 1 : 0)
console.log(`${r.numPassedTests} ${failed} ${r.numPendingTests + r.numTodoTests}`)

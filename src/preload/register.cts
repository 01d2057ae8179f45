// `node --require handover/register app.cjs`: CommonJS cannot wait for the
// parent's hello, so listen() calls the app makes before it has arrived
// (a few ms) complete once it has. Needs require() of ES modules: Node
// 20.19, 22.12 or later.
import { Preload } from './preload.js'

Preload.start().opened.catch((err: Error & { code?: string }) => {
  process.stderr.write(`handover: handover/register could not start: ${err.code ?? ''} ${err.message}\n`)
  process.exit(1)
})

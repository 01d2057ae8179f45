// Scenario a: the baseline, a plain single-process http.createServer.
import http from 'node:http'
import { writeFileSync } from 'node:fs'
import { emit, handler, limitLifetime } from './lib/handler.mjs'

limitLifetime()
const server = http.createServer(handler)
await new Promise((resolve) => server.listen(Number(process.env.BENCH_PORT), '127.0.0.1', resolve))
writeFileSync(process.env.BENCH_PID_FILE, `${process.pid}\n`)
emit('ready')
process.on('SIGTERM', () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
})

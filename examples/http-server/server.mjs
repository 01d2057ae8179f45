// An HTTP server that upgrades itself on SIGHUP without refusing or dropping
// a request.
//
//   PORT=8080 npm run example             # PID_FILE=/tmp/example.pid to write a pid file
//   curl localhost:8080/                  # hello from pid 1234
//   curl 'localhost:8080/slow?ms=5000' &  # still answered by 1234 ...
//   kill -HUP 1234
//   curl localhost:8080/                  # ... while this gets hello from pid 1240
//   kill 1240                             # SIGTERM: the last generation stops gracefully
//
// After an upgrade the first process exits, so npm returns to the prompt
// while the new generation keeps serving in the background: stop it by pid.
import http from 'node:http'

// In an application: import { Upgrader } from 'handover'
import { Upgrader } from '../../dist/index.js'

const port = Number(process.env.PORT || 8080)
const log = (message) => console.log(`[pid ${process.pid}] ${message}`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const upg = await Upgrader.create({ pidFile: process.env.PID_FILE || undefined })

// Installed before anything slow: SIGHUP's default action would kill us.
process.on('SIGHUP', () => {
  log('SIGHUP: upgrading')
  upg.upgrade().then(
    ({ pid }) => log(`upgrade succeeded: new pid ${pid}`),
    (err) => log(`upgrade failed: ${err.code}: ${err.message}`),
  )
})
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    log(`${signal}: stopping`)
    // The last generation: exit() resolves and the same graceful close runs.
    upg.stop()
  })
}

let exiting = false
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost')
  if (url.pathname === '/slow') await sleep(Number(url.searchParams.get('ms') ?? 5000))
  // A keep-alive client must reconnect to reach the new generation.
  if (exiting) res.setHeader('Connection', 'close')
  res.end(`hello from pid ${process.pid}\n`)
})

const listener = upg.listen('tcp', `:${port}`)
await new Promise((resolve) => server.listen(listener, resolve))
log(`started hasParent=${upg.hasParent} address=${listener.address} inherited=${listener.inherited}`)

await upg.ready()
log('ready')

await upg.exit()
exiting = true
log('exiting: no longer accepting, finishing in-flight requests')

// Node >= 19's close() also destroys connections that were accepted but have
// not sent their request yet; during a hand-off those requests are ours to
// answer. (A drain() helper that does all of this properly is planned.)
server.closeIdleConnections = () => {}
const deadline = setTimeout(() => {
  log('deadline passed: closing remaining connections')
  server.closeAllConnections()
}, 30_000).unref()
server.close(() => {
  clearTimeout(deadline)
  log('closed')
})

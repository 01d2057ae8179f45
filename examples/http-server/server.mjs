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

// In an application: import { Upgrader, drain } from 'handover'
import { Upgrader, drain } from '../../dist/index.js'

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

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost')
  if (url.pathname === '/slow') await sleep(Number(url.searchParams.get('ms') ?? 5000))
  res.end(`hello from pid ${process.pid}\n`)
})

const listener = upg.listen('tcp', `:${port}`)
await new Promise((resolve) => server.listen(listener, resolve))
log(`started hasParent=${upg.hasParent} address=${listener.address} inherited=${listener.inherited}`)

await upg.ready()
log('ready')

await upg.exit()
log('draining: no longer accepting, finishing in-flight requests')
// Keep-alive clients get `Connection: close` on their next response, idle
// connections are closed after a short grace, and whatever is still open
// after 30 s is destroyed.
const { graceful, forced } = await drain(server, { timeout: 30_000 })
log(`closed: ${graceful} connections drained, ${forced} forced`)

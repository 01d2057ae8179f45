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
//
// Windows has no SIGHUP, and a later generation has no console for Ctrl+C.
// With ADMIN_PORT set, a loopback admin port does both jobs, on every OS:
//   curl -X POST localhost:9000/upgrade   # like kill -HUP
//   curl -X POST localhost:9000/stop      # like kill (SIGTERM)
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
  // A deploy while the previous generation still drains (a slow request)
  // waits for it, up to the 30 s drain below and some, instead of failing
  // with ERR_PARENT_NOT_EXITED after `kill -HUP` had already succeeded.
  upg.upgrade({ waitForParent: 40_000 }).then(
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

// Handed over like the main socket, so the admin port never changes.
const admin = process.env.ADMIN_PORT ? http.createServer(async (req, res) => {
  const reply = (status, text) => {
    res.statusCode = status
    res.end(`${text}\n`)
  }
  if (req.method !== 'POST') return reply(405, 'POST /upgrade or POST /stop')
  if (req.url === '/stop') {
    upg.stop()
    return reply(200, `pid ${process.pid} stopping`)
  }
  if (req.url !== '/upgrade') return reply(404, 'POST /upgrade or POST /stop')
  try {
    // A new generation can upgrade only once its parent has gone.
    const { pid } = await upg.upgrade({ waitForParent: 40_000 })
    reply(200, `upgraded: new pid ${pid}`)
  } catch (err) {
    reply(409, `upgrade failed: ${err.code}: ${err.message}`)
  }
}) : undefined
if (admin) {
  await new Promise((resolve) => admin.listen(upg.listen('tcp4', `127.0.0.1:${process.env.ADMIN_PORT}`), resolve))
}

await upg.ready()
log('ready')

await upg.exit()
log('draining: no longer accepting, finishing in-flight requests')
// Keep-alive clients get `Connection: close` on their next response, idle
// connections are closed after a short grace, and whatever is still open
// after 30 s is destroyed.
const [{ graceful, forced }] = await Promise.all([drain(server, { timeout: 30_000 }), admin && drain(admin, { timeout: 30_000 })])
log(`closed: ${graceful} connections drained, ${forced} forced`)

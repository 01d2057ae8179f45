// /srv/app/current/server.js
import http from 'node:http'
import { Upgrader, drain } from 'handover'

const upg = await Upgrader.create({ controlSocket: '/run/app/control.sock', pidFile: '/run/app/app.pid' })
process.on('SIGHUP', () => upg.upgrade().catch((err) => console.error('upgrade failed:', err.code, err.message)))
process.on('SIGTERM', () => upg.stop())

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const server = http.createServer(async (req, res) => {
  // /slow?ms=3000 answers after 3 s: a request still in flight during a reload or a stop.
  if (req.url.startsWith('/slow')) await sleep(Number(new URL(req.url, 'http://x').searchParams.get('ms')) || 3000)
  res.end(`hello from ${process.pid}\n`)
})
server.listen(upg.listen('tcp', ':8080'))
await upg.ready()
await upg.exit()
await drain(server)

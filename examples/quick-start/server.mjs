// server.mjs: a server written against the API (PORT=8080 by default).
import http from 'node:http'
import { Upgrader, drain } from 'handover'

const upg = await Upgrader.create({ pidFile: 'app.pid' }) // resolved against the cwd; /run/app.pid in production
// A deploy while the previous generation still drains waits for it (drain's
// 30 s, and some) instead of failing with ERR_PARENT_NOT_EXITED.
process.on('SIGHUP', () => upg.upgrade({ waitForParent: 60_000 }).catch((err) => console.error('upgrade failed:', err)))
// The last generation: exit() resolves too, and the pid file is removed (Ctrl-C included).
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => upg.stop())

const server = http.createServer((req, res) => res.end(`hello from ${process.pid}\n`))
server.listen(upg.listen('tcp', Number(process.env.PORT) || 8080))
await upg.ready()

await upg.exit()    // a new generation is serving, or stop() was called
await drain(server) // stop accepting, finish every request, close keep-alive connections

// server.mjs: fastify written against the API (PORT=8080 by default).
import Fastify from 'fastify'
import { Upgrader, drain } from 'handover'

const upg = await Upgrader.create({ pidFile: 'app.pid' })
process.on('SIGHUP', () => upg.upgrade({ waitForParent: 60_000 }).catch((err) => console.error('upgrade failed:', err)))
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => upg.stop())

const app = Fastify()
app.get('/', async () => `hello from ${process.pid}\n`)
await app.ready()
await new Promise((resolve) => app.server.listen(upg.listen('tcp', Number(process.env.PORT) || 8080), resolve))
await upg.ready()

await upg.exit()
await drain(app.server) // finish the requests in flight, close keep-alive connections
await app.close()       // then fastify's onClose hooks (database pools, ...)

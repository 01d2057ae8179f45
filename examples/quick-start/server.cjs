// server.cjs: the same server in CommonJS, which has no top-level await.
const http = require('node:http')
const { Upgrader, drain } = require('handover')

async function main() {
  const upg = await Upgrader.create({ pidFile: 'app.pid' })
  process.on('SIGHUP', () => upg.upgrade({ waitForParent: 60_000 }).catch((err) => console.error('upgrade failed:', err)))
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => upg.stop())
  const server = http.createServer((req, res) => res.end(`hello from ${process.pid}\n`))
  server.listen(upg.listen('tcp', Number(process.env.PORT) || 8080))
  await upg.ready()
  await upg.exit()
  await drain(server)
}
main()

// app.mjs: an app that knows nothing of handover (PORT=8080 by default).
import http from 'node:http'

const server = http.createServer((req, res) => res.end(`hello from ${process.pid}\n`))
server.listen(Number(process.env.PORT) || 8080)

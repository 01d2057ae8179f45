// sse.mjs: server-sent events, unmodified (PORT=8080 by default). At a
// hand-off, handover ends each stream after a `retry:` hint, each at its own
// moment in the leave window; the EventSource reconnects to the new process.
//   node --import handover/register sse.mjs
import http from 'node:http'

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
  res.write(`data: ${process.pid}\n\n`)
  const timer = setInterval(() => res.write(`data: ${process.pid}\n\n`), 1000)
  res.on('close', () => clearInterval(timer))
})
server.listen(Number(process.env.PORT) || 8080, () => console.log(`listening ${process.pid}`))

// /srv/app/current/app.js: an app that knows nothing of handover, for `handover run`
import http from 'node:http'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const server = http.createServer(async (req, res) => {
  // /slow?ms=3000 answers after 3 s: a request still in flight during a reload or a stop.
  if (req.url.startsWith('/slow')) await sleep(Number(new URL(req.url, 'http://x').searchParams.get('ms')) || 3000)
  res.end(`hello from ${process.pid}\n`)
})
server.listen(8080)

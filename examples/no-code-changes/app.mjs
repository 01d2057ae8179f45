// An ordinary express 5 app with a WebSocket endpoint. It knows nothing of
// handover: at a hand-off, handover closes each WebSocket with 1012
// ("service restart") at its own moment in the leave window
// (HANDOVER_LEAVE_WINDOW, 10 s), so that clients reconnect to the new
// generation without all coming at once.
//
//   PORT=8080 npm run example:preload    # node --import handover/register examples/no-code-changes/app.mjs
//   curl localhost:8080/                 # hello from pid 1234
//   curl 'localhost:8080/slow?ms=5000' & # still answered by 1234 ...
//   kill -HUP 1234                       # handover: upgraded to pid 1240 in 180 ms
//   curl localhost:8080/                 # ... while this gets hello from pid 1240
//   kill 1240                            # SIGTERM: drains, then exits
import http from 'node:http'
import express from 'express'
import { WebSocketServer } from 'ws'

const app = express()
app.get('/', (req, res) => res.send(`hello from pid ${process.pid}\n`))
app.get('/slow', (req, res) => setTimeout(() => res.send(`hello from pid ${process.pid}\n`), Number(req.query.ms ?? 5000)))

const server = http.createServer(app)
const wss = new WebSocketServer({ server })
wss.on('connection', (ws) => ws.send(`hello from pid ${process.pid}`))

server.listen(Number(process.env.PORT || 8080), () => console.log(`[pid ${process.pid}] listening on ${process.env.PORT || 8080}`))

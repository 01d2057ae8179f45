// ws.mjs: an unmodified ws app (PORT=8080 by default). At a hand-off,
// handover closes each WebSocket with 1012 through ws's own object, each at
// its own moment in the leave window.
//   node --import handover/register ws.mjs
import http from 'node:http'
import { WebSocketServer } from 'ws'

const server = http.createServer((req, res) => res.end(String(process.pid)))
const wss = new WebSocketServer({ server })
wss.on('connection', (ws) => ws.send(String(process.pid)))
server.listen(Number(process.env.PORT) || 8080, () => console.log(`listening ${process.pid}`))

// socketio.mjs: socket.io over WebSocket only (PORT=8080 by default), so that
// no request depends on reaching the process, or the worker, that holds its
// session: no sticky sessions needed.
//   node --import handover/register socketio.mjs
//   handover run -w 2 socketio.mjs
import http from 'node:http'
import { Server } from 'socket.io'

const server = http.createServer()
const io = new Server(server, { transports: ['websocket'] })
io.on('connection', (socket) => {
  socket.emit('pid', process.pid)
  socket.on('work', (n, ack) => ack({ n, pid: process.pid }))
})
server.listen(Number(process.env.PORT) || 8080, () => console.log(`listening ${process.pid}`))

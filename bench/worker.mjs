// Scenarios f, g, h and the supervisor soak: the app each `handover run`
// worker runs. It is an unmodified http server on the bench handler (the
// supervisor starts it with --import handover/register), plus the one thing
// the bench needs from it: how many requests this worker served. It appends
//   draining {requests}  when it starts draining (onDrain() from handover)
//   served   {requests}  at exit: the final count, drain included
// to the events file; the report splits each generation's requests by worker.
import http from 'node:http'
import { onDrain } from 'handover'
import { emit, handler, limitLifetime } from './lib/handler.mjs'

limitLifetime()
let requests = 0
onDrain(() => emit('draining', { requests }))
process.on('exit', () => emit('served', { requests }))

http.createServer((req, res) => {
  requests++
  handler(req, res)
}).listen(Number(process.env.BENCH_PORT), '127.0.0.1')

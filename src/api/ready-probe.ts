import { Socket, type Server } from 'node:net'
import type { SocketTable } from '../core/listeners.js'
import { notHealthy, type ProbeOutcome } from '../core/probe-report.js'
import type { PlatformBackend } from '../core/platform.js'
import { isTlsServer } from '../http/connections.js'
import { serverListeningOn } from '../http/listening.js'

/** One attempt may take this long before it counts as failed. */
const ATTEMPT_TIMEOUT = 2_000
/** The start of a body kept for the message. */
const BODY_KEPT = 200

/**
 * The ready probe (issue 20): `GET <path>` to each HTTP server of this
 * process that serves a socket handover handed out, over a private
 * socketpair whose one end is handed to that server as if it had accepted
 * it. So the probe reaches this process's server alone, never an old
 * generation's sharing the socket, and needs no port of its own. 2xx from
 * every such server is healthy.
 */
export async function probeServers(backend: PlatformBackend, table: SocketTable, path: string): Promise<ProbeOutcome> {
  const servers = serversOf(table)
  if (servers.length === 0) return { ok: false, error: 'no HTTP server listens on a socket from handover to probe' }
  for (const server of servers) {
    const outcome = await probeOne(backend, server, path)
    if (!outcome.ok) return outcome
  }
  return { ok: true }
}

/** Probes until healthy; rejects with ERR_NOT_HEALTHY once `timeout` ms have passed, or the signal aborts. */
export async function probeUntilHealthy(
  backend: PlatformBackend, table: SocketTable, path: string, options: { timeout: number; signal: AbortSignal; interval?: number; onFailure?: (outcome: ProbeOutcome) => void },
): Promise<void> {
  const started = Date.now()
  let last: ProbeOutcome = { ok: false, error: 'not probed yet' }
  for (;;) {
    if (options.signal.aborted) throw options.signal.reason
    last = await probeServers(backend, table, path)
    if (last.ok) return
    options.onFailure?.(last)
    if (Date.now() - started >= options.timeout) throw notHealthy(path, last, options.timeout)
    await new Promise((r) => setTimeout(r, options.interval ?? 250))
  }
}

function serversOf(table: SocketTable): Server[] {
  const http = process.getBuiltinModule('node:http')
  const https = process.getBuiltinModule('node:https')
  const found = new Set<Server>()
  for (const key of table.keys()) {
    for (const fd of table.listenerFdsOf(key)) {
      const server = serverListeningOn(fd)
      if (server instanceof http.Server || server instanceof https.Server) found.add(server)
    }
  }
  return [...found]
}

async function probeOne(backend: PlatformBackend, server: Server, path: string): Promise<ProbeOutcome> {
  let pair: [number, number]
  try {
    if (!backend.socketPair) return { ok: false, error: 'this platform has no private connection to probe through' }
    pair = backend.socketPair()
  } catch (err) {
    return { ok: false, error: (err as Error).message }
  }
  let serverSide: Socket
  let clientSide: Socket
  try {
    serverSide = new Socket({ fd: pair[0], readable: true, writable: true })
    clientSide = new Socket({ fd: pair[1], readable: true, writable: true })
  } catch (err) {
    return { ok: false, error: (err as Error).message }
  }
  // As an accepted connection: the server's own handlers (http, or TLS then http) take it.
  server.emit('connection', serverSide)
  const tls = isTlsServer(server)
  const client: Socket = tls
    ? process.getBuiltinModule('node:tls').connect({ socket: clientSide, rejectUnauthorized: false, servername: 'localhost' })
    : clientSide
  return new Promise<ProbeOutcome>((resolve) => {
    let data = ''
    const timer = setTimeout(() => finish({ ok: false, error: `no answer within ${ATTEMPT_TIMEOUT} ms` }), ATTEMPT_TIMEOUT)
    const finish = (outcome: ProbeOutcome): void => {
      clearTimeout(timer)
      client.destroy()
      clientSide.destroy()
      serverSide.destroy()
      resolve(outcome)
    }
    client.setEncoding('utf8')
    client.on('data', (chunk: string) => {
      data += chunk
      if (data.length > 64 * 1024) finish(parse(data))
    })
    client.on('end', () => finish(parse(data)))
    client.on('error', (err) => finish(data ? parse(data) : { ok: false, error: err.message }))
    const write = (): void => void client.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: handover-ready-probe\r\nConnection: close\r\n\r\n`)
    if (tls) client.once('secureConnect', write)
    else write()
  })
}

function parse(text: string): ProbeOutcome {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(text)
  if (!match) return { ok: false, error: `not an HTTP answer: ${JSON.stringify(text.slice(0, 80))}` }
  const status = Number(match[1])
  const head = text.indexOf('\r\n\r\n')
  const body = head === -1 ? '' : text.slice(head + 4, head + 4 + BODY_KEPT)
  return { ok: status >= 200 && status < 300, status, body }
}

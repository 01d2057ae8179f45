import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import net from 'node:net'
import { readFileSync } from 'node:fs'
import { Agent as UndiciAgent, request as undiciRequest } from 'undici'
import { requestLoop, type RequestLoop } from './clients.mjs'

export const CA = readFileSync(new URL('../fixtures/tls/cert.pem', import.meta.url))

/** Reads a whole response and turns anything but `200 <pid>` into an error. */
function pidFromResponse(res: http.IncomingMessage): Promise<number> {
  return new Promise((resolve, reject) => {
    let body = ''
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => (body += chunk))
    res.on('error', reject)
    res.on('end', () => (res.statusCode === 200 ? resolve(Number(body)) : reject(new Error(`status ${res.statusCode}`))))
  })
}

function viaNodeAgent(port: number, agent: http.Agent, secure: boolean, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path: '/', agent, timeout: 10_000, ...(secure ? { ca, servername: 'localhost' } : {}) }
    const req = (secure ? https : http).get(options, (res) => pidFromResponse(res).then(resolve, reject))
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })))
    req.on('error', reject)
  })
}

/** Node's own keep-alive agent; it does not retry a request whose socket was reset. */
export function nodeKeepAliveLoop(port: number, concurrency: number, secure = false, ca = CA): RequestLoop {
  const agent = secure ? new https.Agent({ keepAlive: true, maxSockets: concurrency }) : new http.Agent({ keepAlive: true, maxSockets: concurrency })
  return requestLoop(concurrency, () => viaNodeAgent(port, agent, secure, ca), () => agent.destroy())
}

/** undici with keep-alive; its request() does not retry either. */
export function undiciLoop(port: number, concurrency: number): RequestLoop {
  const dispatcher = new UndiciAgent({ keepAliveTimeout: 30_000, connections: concurrency })
  return requestLoop(
    concurrency,
    async () => {
      const { statusCode, body } = await undiciRequest(`http://127.0.0.1:${port}/`, { dispatcher })
      const text = await body.text()
      if (statusCode !== 200) throw new Error(`status ${statusCode}`)
      return Number(text)
    },
    () => dispatcher.close(),
  )
}

/**
 * One HTTP/2 session, kept open across hand-offs until the server's GOAWAY
 * closes it; then a new one. A request the session refused before sending
 * (it had closed) or the server refused unprocessed (REFUSED_STREAM) is
 * retried, as HTTP/2 allows; any other failure counts.
 */
export function http2Loop(port: number, concurrency: number, ca = CA) {
  let session: http2.ClientHttp2Session | undefined
  const sessions: http2.ClientHttp2Session[] = []
  const connect = (): http2.ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session
    session = http2.connect(`https://localhost:${port}`, { ca })
    session.on('error', () => {})
    sessions.push(session)
    return session
  }
  const once = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const stream = connect().request({ ':path': '/' })
      let body = ''
      let status = 0
      stream.setEncoding('utf8')
      stream.on('response', (headers) => (status = Number(headers[':status'])))
      stream.on('data', (chunk: string) => (body += chunk))
      stream.on('end', () => (status === 200 ? resolve(Number(body)) : reject(new Error(`status ${status}`))))
      stream.on('error', reject)
    })
  const retryable = (err: unknown): boolean => {
    const e = err as { code?: string; message?: string }
    return e.code === 'ERR_HTTP2_GOAWAY_SESSION' || e.code === 'ERR_HTTP2_INVALID_SESSION' || /REFUSED_STREAM/.test(e.message ?? '')
  }
  let retries = 0
  const loop = requestLoop(
    concurrency,
    async () => {
      for (;;) {
        try {
          return await once()
        } catch (err) {
          if (!retryable(err)) throw err
          retries++
        }
      }
    },
    () => {
      for (const s of sessions) s.close()
    },
  )
  return Object.assign(loop, {
    get retries() {
      return retries
    },
    sessions,
  })
}

/**
 * Pipelining clients: each writes three requests at once on its connection,
 * reads the answers, and goes on with the next three on the same connection
 * until a response says `Connection: close`. The requests that close left
 * unanswered are sent again on a new connection, as RFC 9112 9.3.2 tells a
 * pipelining client to do; a connection that closes without saying so, or
 * mid-response, is a failure.
 */
export function pipelinedLoop(port: number, concurrency: number, depth = 3) {
  let resent = 0
  const connections: Array<PipelinedConnection | undefined> = []
  const loop = requestLoop(
    concurrency,
    async (worker) => {
      let connection = connections[worker]
      if (!connection || connection.closing) connection = connections[worker] = await PipelinedConnection.open(port)
      const pids = await connection.batch(depth)
      resent += depth - pids.length
      return pids[0]
    },
    () => {
      for (const c of connections) c?.socket.destroy()
    },
  )
  return Object.assign(loop, {
    get resent() {
      return resent
    },
  })
}

class PipelinedConnection {
  closing = false
  private buffer = ''
  private pending?: { depth: number; pids: number[]; resolve: (pids: number[]) => void; reject: (err: Error) => void }

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8')
    socket.setTimeout(10_000, () => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })))
    socket.on('data', (chunk: string) => this.read(chunk))
    socket.on('error', (err) => this.fail(err))
    socket.on('close', () => {
      if (this.buffer.length > 0) this.fail(new Error('connection closed mid-response'))
      else if (this.pending && !this.closing) this.fail(new Error('connection closed without Connection: close'))
      else this.settle()
      this.closing = true
    })
  }

  static open(port: number): Promise<PipelinedConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.off('error', reject)
        resolve(new PipelinedConnection(socket))
      })
      socket.once('error', reject)
    })
  }

  /** Resolves with the pids of the responses that came before the batch ended or the server closed. */
  batch(depth: number): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.pending = { depth, pids: [], resolve, reject }
      this.socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'.repeat(depth))
    })
  }

  private read(chunk: string): void {
    this.buffer += chunk
    for (;;) {
      const head = this.buffer.indexOf('\r\n\r\n')
      if (head < 0 || !this.pending) return
      const headers = this.buffer.slice(0, head)
      const length = Number(/content-length: *(\d+)/i.exec(headers)?.[1])
      if (!Number.isFinite(length) || this.buffer.length < head + 4 + length) return
      if (!headers.startsWith('HTTP/1.1 200')) return this.fail(new Error(`bad response: ${headers.split('\r\n')[0]}`))
      this.pending.pids.push(Number(this.buffer.slice(head + 4, head + 4 + length)))
      this.buffer = this.buffer.slice(head + 4 + length)
      if (/connection: *close/i.test(headers)) {
        this.closing = true
        this.socket.end()
        return this.settle()
      }
      if (this.pending.pids.length === this.pending.depth) this.settle()
    }
  }

  private settle(): void {
    const pending = this.pending
    this.pending = undefined
    if (pending && pending.pids.length > 0) pending.resolve(pending.pids)
    else pending?.reject(new Error('no response at all'))
  }

  private fail(err: Error): void {
    const pending = this.pending
    this.pending = undefined
    this.closing = true
    this.socket.destroy()
    pending?.reject(err)
  }
}

import { readFileSync } from 'node:fs'
import http2 from 'node:http2'
import tls, { type SecureVersion, type TLSSocket } from 'node:tls'

/** The certificate (for localhost and 127.0.0.1) of test/fixtures/tls/, which the fixtures serve. */
export const TLS_DIR = new URL('../fixtures/tls/', import.meta.url).pathname
const CA = readFileSync(`${TLS_DIR}cert.pem`)

export type TlsKind = 'https' | 'http2' | 'tls'

export interface TlsVisit {
  /** The pid that answered. */
  pid: number
  /** True if the server resumed the session passed in (an abbreviated handshake). */
  reused: boolean
  /** The newest session ticket this connection got, for the next one; the one passed in if it got none. */
  session?: Buffer
  /** TLSv1.3, TLSv1.2. */
  protocol: string | null
}

/**
 * One fresh connection with Node's own TLS client: the handshake (resuming
 * `session` if given), one request (HTTP/1.1 with `Connection: close`, an
 * HTTP/2 stream, or nothing for a plain TLS server, which writes its pid and
 * ends), the answer, and whether the server resumed the session. `maxVersion`
 * 'TLSv1.2' asks for TLS 1.2 (tickets in the handshake) instead of 1.3.
 */
export function tlsVisit(kind: TlsKind, port: number, session?: Buffer, timeoutMs = 10_000, maxVersion?: SecureVersion): Promise<TlsVisit> {
  return new Promise((resolve, reject) => {
    let latest = session
    const socket = tls.connect({
      host: '127.0.0.1', port, servername: 'localhost', ca: CA, session, maxVersion,
      ALPNProtocols: kind === 'http2' ? ['h2'] : kind === 'https' ? ['http/1.1'] : undefined,
    })
    // TLS 1.3 sends its tickets after the handshake: the last one seen is the one to use next.
    socket.on('session', (s: Buffer) => (latest = s))
    // Asked at once: once the socket is destroyed (HTTP/2's close), it no longer knows.
    let reused: boolean | undefined
    let protocol: string | null = null
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused()
      protocol = socket.getProtocol()
    })
    const timer = setTimeout(() => fail(new Error(`no answer from ${kind} port ${port} within ${timeoutMs} ms`)), timeoutMs)
    const fail = (err: Error): void => {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    const done = (body: string): void => {
      clearTimeout(timer)
      const pid = Number(/(\d+)\s*$/.exec(body)?.[1])
      if (!Number.isInteger(pid) || pid <= 0) return fail(new Error(`${kind}: no pid in ${JSON.stringify(body.slice(-200))}`))
      if (reused === undefined) return fail(new Error(`${kind}: an answer without a handshake`))
      resolve({ pid, reused, session: latest, protocol })
    }
    socket.on('error', fail)
    if (kind === 'http2') {
      http2Request(socket).then(done, fail)
      return
    }
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => (text += chunk))
    socket.on('end', () => {
      socket.end()
      done(kind === 'https' ? httpBody(text) : text)
    })
    if (kind === 'https') socket.once('secureConnect', () => socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'))
  })
}

function httpBody(response: string): string {
  const at = response.indexOf('\r\n\r\n')
  if (!/^HTTP\/1\.1 200 /.test(response) || at === -1) return ''
  return response.slice(at + 4)
}

/** GET / on an HTTP/2 session over `socket`; resolves with the body once the session has closed. */
function http2Request(socket: TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = http2.connect('https://localhost', { createConnection: () => socket })
    client.on('error', reject)
    const req = client.request({ ':path': '/' })
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('error', reject)
    req.on('end', () => client.close(() => resolve(body)))
  })
}

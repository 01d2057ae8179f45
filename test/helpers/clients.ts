import dgram from 'node:dgram'
import http from 'node:http'
import net from 'node:net'

export interface Target {
  port?: number
  host?: string
  socketPath?: string
}

/** One request on a fresh connection (agent: false). Rejects on any failure. */
export function get(target: Target, path = '/', timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...target, host: target.host ?? '127.0.0.1', path, agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })))
    req.on('error', reject)
  })
}

/** The pid that answered `/`, as a number. */
export async function pidAt(target: Target): Promise<number> {
  const { status, body } = await get(target)
  if (status !== 200) throw new Error(`status ${status}`)
  return Number(body)
}

/** Sends one datagram and waits for the `pid:payload` echo. */
export function udpPid(port: number, host = '127.0.0.1', timeoutMs = 2_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4')
    const timer = setTimeout(() => {
      socket.close()
      reject(new Error('no udp answer'))
    }, timeoutMs)
    socket.on('message', (msg) => {
      clearTimeout(timer)
      socket.close()
      resolve(Number(String(msg).split(':')[0]))
    })
    socket.send('ping', port, host)
  })
}

/** A port that was free a moment ago (port 0 is never inherited, so fixtures need a fixed one). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** `concurrency` loops of fresh-connection requests, counted by answering pid and by error code. */
export function loadLoop(target: Target, concurrency: number): RequestLoop {
  return requestLoop(concurrency, async () => {
    const { status, body } = await get(target, '/', 10_000)
    if (status !== 200) throw new Error(`status ${status}`)
    return Number(body)
  })
}

export interface RequestLoop {
  readonly ok: number
  errors: Record<string, number>
  byPid: Map<number, number>
  stop(): Promise<void>
}

/**
 * Runs `concurrency` loops of `request` until stopped, and counts answers by
 * pid and failures by error code. `request` resolves with the answering pid.
 */
export function requestLoop(concurrency: number, request: (worker: number) => Promise<number>, onStop?: () => Promise<void> | void): RequestLoop {
  let running = true
  let ok = 0
  const errors: Record<string, number> = {}
  const byPid = new Map<number, number>()
  const loops = Array.from({ length: concurrency }, async (_, worker) => {
    while (running) {
      try {
        const pid = await request(worker)
        ok++
        byPid.set(pid, (byPid.get(pid) ?? 0) + 1)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
        errors[code] = (errors[code] ?? 0) + 1
      }
    }
  })
  return {
    get ok() {
      return ok
    },
    errors,
    byPid,
    async stop() {
      running = false
      await Promise.all(loops)
      await onStop?.()
    },
  }
}

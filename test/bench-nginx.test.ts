import { describe, expect, it } from 'vitest'

// The bench's nginx scenario (l) counts 502s and retries from nginx's own
// logs (bench/lib/nginx-log.mjs) with a configuration it writes itself
// (bench/lib/nginx.mjs). Pure text in, counts out: no nginx needed here.
const LOG = new URL('../bench/lib/nginx-log.mjs', import.meta.url).href
const CONF = new URL('../bench/lib/nginx.mjs', import.meta.url).href

interface AccessCounts {
  requests: number
  byStatus: Record<string, number>
  retried: number
  bad: [number, number, string][]
  malformed: number
}
interface LogModule {
  ACCESS_FORMAT: string
  accessLogCounter: () => { push: (chunk: string) => void; end: () => AccessCounts }
  countAccessLog: (text: string) => AccessCounts
  countErrorLog: (text: string) => { lines: number; byKind: Record<string, number> }
  gatewayErrors: (byStatus: Record<string, number>) => { 502: number; 504: number }
}
const load = async (): Promise<LogModule> => (await import(LOG)) as LogModule

// Lines as nginx writes them with ACCESS_FORMAT ('$msec $status $upstream_status').
const ACCESS = [
  '1765072800.001 200 200',
  '1765072800.002 200 502, 200', // failed on a cached connection, retried
  '1765072800.003 502 502', // the client saw it
  '1765072800.004 504 504',
  '1765072800.005 502 -', // nginx answered without reaching the upstream
  '1765072800.006 200 200 : 200', // an internal redirect: two attempts too
  '1765072800.007 200 200',
].join('\n')

describe('nginx access log counter', () => {
  it('counts statuses, gateway errors and the requests nginx sent upstream more than once', async () => {
    const { countAccessLog, gatewayErrors, ACCESS_FORMAT } = await load()
    expect(ACCESS_FORMAT).toBe('$msec $status $upstream_status')
    const c = countAccessLog(`${ACCESS}\n`)
    expect(c.requests).toBe(7)
    expect(c.byStatus).toEqual({ 200: 4, 502: 2, 504: 1 })
    expect(c.retried).toBe(2)
    expect(c.malformed).toBe(0)
    expect(c.bad).toEqual([[1765072800003, 502, '502'], [1765072800004, 504, '504'], [1765072800005, 502, '-']])
    expect(gatewayErrors(c.byStatus)).toEqual({ 502: 2, 504: 1 })
    expect(gatewayErrors({ 200: 5 })).toEqual({ 502: 0, 504: 0 })
  })

  it('gives the same counts however the log is cut into chunks', async () => {
    const { accessLogCounter, countAccessLog } = await load()
    const whole = countAccessLog(ACCESS)
    for (const size of [1, 2, 5, 13, 40]) {
      const counter = accessLogCounter()
      for (let i = 0; i < ACCESS.length; i += size) counter.push(ACCESS.slice(i, i + size))
      expect(counter.end(), `chunks of ${size}`).toEqual(whole)
    }
  })

  it('counts what it cannot read as malformed, not as requests; an empty log is no request', async () => {
    const { countAccessLog } = await load()
    const c = countAccessLog('garbage\n1765072800.001 200 200\r\n\n200 200\n1765072800.002 2000 200\n')
    expect(c.requests).toBe(1)
    expect(c.malformed).toBe(3)
    expect(countAccessLog('')).toMatchObject({ requests: 0, malformed: 0, retried: 0 })
  })
})

describe('nginx error log counter', () => {
  it('counts by level and message, without the date, the pids, the connection or the request details', async () => {
    const { countErrorLog } = await load()
    const text = [
      '2026/12/07 02:10:00 [error] 4242#4242: *17 upstream prematurely closed connection while reading response header from upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:40001/", host: "127.0.0.1:40002"',
      '2026/12/07 02:10:01 [error] 4242#4242: *90 upstream prematurely closed connection while reading response header from upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1"',
      '2026/12/07 02:10:01 [error] 4242#4242: *91 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1',
      '2026/12/07 02:10:02 [alert] 4241#4241: worker process 4242 exited on signal 9',
      'not a line of nginx',
      '',
    ].join('\n')
    expect(countErrorLog(text)).toEqual({
      lines: 4,
      byKind: {
        '[error] upstream prematurely closed connection while reading response header from upstream': 2,
        '[error] recv() failed (104: Connection reset by peer) while reading response header from upstream': 1,
        '[alert] worker process 4242 exited on signal 9': 1,
      },
    })
  })
})

describe('nginx configuration', () => {
  it('keeps every path nginx writes in its own folder, and keeps a keep-alive pool to the upstream', async () => {
    const { nginxConf } = (await import(CONF)) as { nginxConf: (o: object) => string }
    const conf = nginxConf({ dir: '/tmp/handover-bench-nginx-Ab12Cd', port: 40002, upstreamPort: 40001 })
    expect(conf).toContain('listen 127.0.0.1:40002;')
    expect(conf).toContain('server 127.0.0.1:40001;')
    expect(conf).toContain('keepalive 32;')
    expect(conf).toContain('proxy_http_version 1.1;')
    expect(conf).toContain('proxy_set_header Connection "";')
    expect(conf).toContain("log_format bench '$msec $status $upstream_status';")
    // Every path is inside the folder: pid, logs and the five temp folders.
    const paths = [...conf.matchAll(/"(\/[^"]*)"/g)].map((m) => m[1])
    expect(paths).toHaveLength(8)
    for (const p of paths) expect(p.startsWith('/tmp/handover-bench-nginx-Ab12Cd/'), p).toBe(true)
    expect(conf).not.toMatch(/daemon|user /)
  })
})

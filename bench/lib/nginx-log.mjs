// Reads the logs of l's nginx (lib/nginx.mjs). Pure: text in, counts out
// (test/bench-nginx.test.ts).
//
// The access log's format is ACCESS_FORMAT: `$msec $status $upstream_status`.
// $upstream_status lists one status per upstream attempt ("502, 200" when
// nginx tried twice): nginx retries a request that failed on a cached
// keep-alive connection (ngx_http_upstream_next(): `u->peer.cached` adds a
// try) when proxy_next_upstream allows it, as it does by default for a GET.
// So a request with 2+ attempts is a race the client did not see, and a 502
// or 504 in $status is one it did.

export const ACCESS_FORMAT = '$msec $status $upstream_status'

/** Non-2xx responses kept with their time, at most this many (the counts are exact). */
const KEEP_BAD = 1000

/**
 * A streaming counter of the access log: push(chunk) any number of times
 * (lines may be split across chunks), then end() returns
 * { requests, byStatus: {status: n}, retried, bad: [[ms, status, upstream]], malformed }.
 */
export function accessLogCounter() {
  const counts = { requests: 0, byStatus: {}, retried: 0, bad: [], malformed: 0 }
  let rest = ''
  const line = (text) => {
    if (!text) return
    const m = /^(\d+(?:\.\d+)?) (\d{3}) (.*)$/.exec(text)
    if (!m) return void counts.malformed++
    const [, msec, status, upstream] = m
    counts.requests++
    counts.byStatus[status] = (counts.byStatus[status] ?? 0) + 1
    // "-" when nginx answered without an upstream; one entry per attempt otherwise ("," or ":" between them).
    const attempts = upstream === '-' ? 0 : upstream.split(/[,:]/).length
    if (attempts > 1) counts.retried++
    if (!status.startsWith('2') && counts.bad.length < KEEP_BAD) counts.bad.push([Math.round(Number(msec) * 1000), Number(status), upstream])
  }
  return {
    push(chunk) {
      const lines = (rest + chunk).split('\n')
      rest = lines.pop()
      for (const l of lines) line(l.trimEnd())
    },
    end() {
      line(rest.trimEnd())
      rest = ''
      return counts
    },
  }
}

/** Counts one whole access log's text. */
export function countAccessLog(text) {
  const c = accessLogCounter()
  c.push(text)
  return c.end()
}

/**
 * nginx's error log by kind: `[level] message`, without the date, the
 * pid#tid, the connection number and the per-request details after
 * ", client:". { lines, byKind: { kind: n } }.
 */
export function countErrorLog(text) {
  const out = { lines: 0, byKind: {} }
  for (const raw of text.split('\n')) {
    const m = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*?)(?:, client: .*)?$/.exec(raw.trimEnd())
    if (!m) continue
    out.lines++
    const kind = `[${m[1]}] ${m[2]}`
    out.byKind[kind] = (out.byKind[kind] ?? 0) + 1
  }
  return out
}

/** 502 and 504 among the responses: what a client behind nginx sees of a lost upstream request. */
export function gatewayErrors(byStatus) {
  return { 502: byStatus['502'] ?? 0, 504: byStatus['504'] ?? 0 }
}

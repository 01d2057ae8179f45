// autocannon run for lib/load.mjs when wrk is missing. Prints one JSON line.
// autocannon neither honours Connection: close nor counts a request lost to a
// closed connection, so each client is taught both here, with errors sorted
// into wrk's kinds: connect / read / write / timeout (plus non-2xx).
// Unlike wrk, it also says when each error happened: per 100 ms of wall
// clock (`errorBuckets`, for the timeline charts), at one clock read per error.
import autocannon from 'autocannon'

const { url, seconds, connections, close, connectionRate } = JSON.parse(process.argv[2])
const errors = { connect: 0, read: 0, write: 0, timeout: 0, non2xx: 0 }
const errorBuckets = {}

const count = (kind) => {
  errors[kind]++
  const bucket = Math.floor(Date.now() / 100)
  errorBuckets[bucket] = (errorBuckets[bucket] ?? 0) + 1
}

const classify = (err) => {
  if (err.syscall === 'connect' || err.code === 'ECONNREFUSED') count('connect')
  else if (err.syscall === 'write' || err.code === 'EPIPE') count('write')
  else count('read')
}

function setupClient(client) {
  // Set when a response said Connection: close; the server's EOF is then expected.
  let closing = false
  client.on('headers', (h) => { if (h.shouldKeepAlive === false) closing = true })
  client.on('connError', classify)
  client.on('timeout', () => count('timeout'))
  // autocannon's own non2xx total counts the same responses.
  client.on('response', (status) => { if (status < 200 || status > 299) count('non2xx') })
  const doRequest = client._doRequest
  client._doRequest = function () {
    // Not on a connection the server is closing: that request would vanish.
    if (!closing) doRequest.call(this)
  }
  const connect = client._connect
  client._connect = function () {
    closing = false
    this.pipelinedRequests.clear()
    connect.call(this)
    this.conn.prependListener('end', () => {
      if (!closing && this.pipelinedRequests.size() > 0) count('read')
    })
  }
}

const instance = autocannon({
  url,
  connections,
  duration: seconds,
  timeout: 2, // wrk's default
  headers: close ? { connection: 'close' } : {},
  ...(connectionRate ? { connectionRate } : {}),
  setupClient,
})
process.once('SIGINT', () => instance.stop())
instance.once('done', (r) => {
  errors.non2xx = r.non2xx
  process.stdout.write(`${JSON.stringify({
    requests: r.requests.total,
    seconds: r.duration,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors,
    errorBuckets: { bucketMs: 100, counts: errorBuckets },
  })}\n`)
})

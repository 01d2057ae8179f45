// The client end of the control socket (service/control-socket.ts): one
// command line out, one JSON answer line back. The `handover` command uses it.
import { statSync } from 'node:fs'
import net from 'node:net'

export interface Answer {
  ok: boolean
  code?: string
  message?: string
  [field: string]: unknown
}

/**
 * Failures that say the server never took this command: a full listen queue
 * refuses a unix connect with EAGAIN; EPIPE is a write after the server
 * closed; and on a unix socket ECONNRESET means the server closed with our
 * line still unread in its queue. The server closes a connection without
 * answering only before it has read a command (it evicts the oldest idle
 * connection to make room for a newer one, or one past its deadline), so
 * trying these again never runs a command twice.
 */
const NOT_TAKEN = new Set(['ECONNRESET', 'EPIPE', 'EAGAIN'])

/** Before the one retry: a little, and spread, so that a burst of clients does not come back at once. */
const RETRY_DELAY_MIN = 20
const RETRY_DELAY_SPREAD = 80

function parseAnswer(text: string, path: string): Answer {
  try {
    const value = JSON.parse(text) as Answer
    if (typeof value === 'object' && value !== null && typeof value.ok === 'boolean') return value
  } catch {
    // Reported below.
  }
  return { ok: false, code: 'ERR_PROTOCOL', message: `${path} answered something that is not a handover answer: ${JSON.stringify(text.slice(0, 120))}` }
}

/** Connecting to something that is not a socket says ECONNREFUSED, which reads as "not running". */
function notASocket(path: string): string | undefined {
  try {
    const st = statSync(path)
    if (st.isDirectory()) return `${path} is a directory, not a control socket`
    if (!st.isSocket()) return `${path} is not a socket`
  } catch {
    // Missing or unreadable: the connect error says so.
  }
  return undefined
}

function connectError(err: NodeJS.ErrnoException, path: string): Answer {
  const wrongKind = notASocket(path)
  if (wrongKind !== undefined) return { ok: false, code: 'ENOTSOCK', message: `cannot reach ${path}: ${wrongKind}` }
  const code = err.code ?? 'ERR_CONNECT'
  const why = code === 'ENOENT' ? 'no such socket: is the server running with the controlSocket option?'
    : code === 'ECONNREFUSED' ? 'nothing is accepting on it: the server is not running'
    : code === 'EACCES' ? 'permission denied: run as the user the server runs as'
    : code === 'EAGAIN' ? 'its queue of waiting connections is full'
    : err.message
  return { ok: false, code, message: `cannot reach ${path}: ${why}` }
}

/** One exchange. `deadline` is a Date.now() value that covers the connect as well as the answer. */
function exchange(path: string, line: string, deadline: number, waitMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = net.connect(path)
    let buffer = ''
    const finish = (answer: Answer): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(answer)
    }
    const timer = setTimeout(() => finish({ ok: false, code: 'ERR_TIMEOUT', message: `no answer to ${JSON.stringify(line)} from ${path} within ${waitMs} ms` }), Math.max(0, deadline - Date.now()))
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write(`${line}\n`))
    socket.on('data', (chunk: string) => {
      buffer += chunk
      const newline = buffer.indexOf('\n')
      if (newline !== -1) finish(parseAnswer(buffer.slice(0, newline), path))
    })
    socket.on('end', () => {
      finish(buffer === ''
        ? { ok: false, code: 'ERR_NO_ANSWER', message: `${path} closed the connection without an answer` }
        : parseAnswer(buffer, path))
    })
    socket.on('error', (err: NodeJS.ErrnoException) => finish(connectError(err, path)))
  })
}

/**
 * Sends one command line and resolves with the one answer line (never
 * rejects: failures are answers with ok: false). A command the server never
 * took (NOT_TAKEN) is sent once more, within the same `waitMs`. A connection
 * closed without an answer may have run the command (a generation that
 * exited mid-upgrade): it is tried again only for an `idempotent` command
 * such as status, and is otherwise ERR_PROTOCOL.
 */
export async function request(path: string, line: string, waitMs: number, options: { idempotent?: boolean } = {}): Promise<Answer> {
  const deadline = Date.now() + waitMs
  const retry = (a: Answer): boolean => !a.ok && (NOT_TAKEN.has(a.code as string) || (options.idempotent === true && a.code === 'ERR_NO_ANSWER'))
  let answer = await exchange(path, line, deadline, waitMs)
  if (retry(answer)) {
    const delay = RETRY_DELAY_MIN + Math.floor(Math.random() * RETRY_DELAY_SPREAD)
    if (Date.now() + delay < deadline) {
      await new Promise((resolve) => setTimeout(resolve, delay))
      answer = await exchange(path, line, deadline, waitMs)
    }
  }
  if (!answer.ok && answer.code === 'ERR_NO_ANSWER') return { ...answer, code: 'ERR_PROTOCOL' }
  return answer
}

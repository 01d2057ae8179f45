import { sendNotify } from '../backend/index.js'
import { HandoverError, systemError } from '../core/errors.js'
import { inherited, NOTIFY_SOCKET } from '../core/inherited-env.js'

/**
 * Where systemd (or another manager speaking sd_notify) listens for status
 * messages: NOTIFY_SOCKET, taken out of process.env when handover is first
 * imported (core/inherited-env.ts), since the manager accepts messages only
 * from the main process. Only handover's next generation gets it back, in
 * the environment upgrade() passes.
 */
const inheritedSocket = inherited.notifySocket

/** Values as sd_notify(3) takes them: text, or a non-negative integer. */
export type NotifyValue = string | number | bigint

/** Assignments such as `{ STATUS: 'warming caches', WATCHDOG: 1 }`, sent as one message. */
export type NotifyFields = Record<string, NotifyValue>

const NAME = /^[A-Z][A-Z0-9_]*$/
const MAX_MESSAGE = 4096

function invalid(message: string): HandoverError {
  return new HandoverError('ERR_INVALID_ARGUMENT', message)
}

/** `NAME=value` lines, checked so that no value can forge another assignment. */
export function formatNotify(fields: NotifyFields): string {
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
    throw invalid('notify() takes an object of fields, such as { STATUS: "ready" }')
  }
  const entries = Object.entries(fields)
  if (entries.length === 0) throw invalid('notify() needs at least one field')
  let message = ''
  for (const [name, value] of entries) {
    if (!NAME.test(name)) throw invalid(`notify field name ${JSON.stringify(name)} must be upper case letters, digits and _`)
    let text: string
    if (typeof value === 'string') text = value
    else if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) text = String(value)
    else if (typeof value === 'bigint' && value >= 0n) text = value.toString()
    else throw invalid(`notify field ${name} must be a string or a non-negative integer, not ${String(value)}`)
    if (/[\n\0]/.test(text)) throw invalid(`notify field ${name} must not contain a newline or NUL`)
    message += `${name}=${text}\n`
  }
  if (Buffer.byteLength(message) > MAX_MESSAGE) throw invalid(`notify message longer than ${MAX_MESSAGE} bytes`)
  return message
}

/** The NOTIFY_SOCKET this process was started with, if any. */
export function notifySocket(): string | undefined {
  return inheritedSocket
}

function send(socket: string, message: string): void {
  let path: string
  let abstract: boolean
  if (socket.startsWith('@')) {
    path = socket.slice(1)
    abstract = true
  } else if (socket.startsWith('/')) {
    path = socket
    abstract = false
  } else {
    // systemd also knows vsock:CID:PORT, for virtual machines; that is not a unix socket.
    throw new HandoverError('ERR_UNSUPPORTED', `${NOTIFY_SOCKET}=${JSON.stringify(socket.slice(0, 80))} is neither an absolute path nor @abstract`)
  }
  try {
    sendNotify(path, abstract, message)
  } catch (err) {
    if (err instanceof HandoverError) throw err
    throw systemError(err, `notify socket ${socket}`)
  }
}

/**
 * Sends `fields` to the service manager as one sd_notify message, e.g.
 * `notify({ WATCHDOG: 1 })` or `notify({ STATUS: 'warming caches' })`.
 * Returns false, sending nothing, when the process was not started with
 * NOTIFY_SOCKET. Bad fields throw ERR_INVALID_ARGUMENT; a failed send throws
 * the errno's code (ENOENT, ECONNREFUSED, EAGAIN when the manager is not reading).
 */
export function notify(fields: NotifyFields): boolean {
  const message = formatNotify(fields)
  if (inheritedSocket === undefined) return false
  send(inheritedSocket, message)
  return true
}

/** CLOCK_MONOTONIC in µs, as Type=notify-reload wants with RELOADING=1 (libuv's hrtime is that clock on Linux). */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n
}

/**
 * The Upgrader's own messages. Each is a no-op without NOTIFY_SOCKET. A
 * failed send becomes a process warning, never a failed ready(), upgrade()
 * or stop(): the server is fine, only its manager is not listening.
 */
export class ServiceNotifier {
  /** A STATUS= that a failed upgrade left behind, to clear on the next success. */
  private statusShown = false

  constructor(private readonly socket: string | undefined = inheritedSocket) {}

  /** The first generation is serving. MAINPID helps when a wrapper started it. */
  ready(): void {
    this.send({ READY: 1, MAINPID: process.pid })
  }

  /** A later generation is serving, after its parent named it the main process. */
  readyAfterHandOff(): void {
    this.send({ READY: 1 })
  }

  reloading(): void {
    this.send({ RELOADING: 1, MONOTONIC_USEC: monotonicUsec() })
  }

  /** Sent by the old process, which the manager still trusts, before the successor says READY=1. */
  handedOver(childPid: number): void {
    this.send(this.statusShown ? { MAINPID: childPid, STATUS: '' } : { MAINPID: childPid })
    this.statusShown = false
  }

  upgradeFailed(err: unknown): void {
    const e = err as { code?: string; message?: string }
    const why = `upgrade failed: ${e?.code ?? 'Error'}: ${e?.message ?? String(err)}`.replace(/[\r\n\0]+/g, ' ').slice(0, 1000)
    this.send({ READY: 1, STATUS: why })
    this.statusShown = true
  }

  stopping(): void {
    this.send({ STOPPING: 1 })
  }

  /** The next generation's environment: the socket, and a watchdog that is no longer tied to this pid. */
  childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    if (this.socket === undefined) return env
    const next: NodeJS.ProcessEnv = { ...env, [NOTIFY_SOCKET]: this.socket }
    // sd_watchdog_enabled() ignores WATCHDOG_USEC when WATCHDOG_PID names
    // another process, and the child's pid is not known before it exists.
    delete next.WATCHDOG_PID
    return next
  }

  private send(fields: NotifyFields): void {
    if (this.socket === undefined) return
    try {
      send(this.socket, formatNotify(fields))
    } catch (err) {
      const e = err as HandoverError
      process.emitWarning(`sd_notify ${Object.keys(fields).join(',')} failed: ${e.message}`, { type: 'HandoverWarning', code: e.code })
    }
  }
}

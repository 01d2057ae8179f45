import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { PACKET_NETWORKS, STREAM_NETWORKS } from './address.js'
import type { TransferEntry } from './backend/types.js'
import { HandoverError } from './errors.js'

/** Set by the parent for the next generation: the control channel's fd. */
export const CONTROL_ENV = 'HANDOVER_CONTROL'
/** Set by `handover run` for its workers: the fd of the channel that answers socket requests. */
export const SUPERVISOR_ENV = 'HANDOVER_SUPERVISOR'
export const PROTOCOL_VERSION = 1
const MAX_LINE = 1 << 20

/**
 * Taken out of process.env when handover is first imported, so that no
 * process the application spawns later believes it has a handover parent.
 */
const inheritedControl: string | undefined = process.env[CONTROL_ENV]
const inheritedSupervisor: string | undefined = process.env[SUPERVISOR_ENV]
delete process.env[CONTROL_ENV]
delete process.env[SUPERVISOR_ENV]

/** The control fd this process inherited, undefined if it has no parent. */
export function inheritedControlFd(): number | undefined {
  if (inheritedControl === undefined) return undefined
  if (!/^\d{1,4}$/.test(inheritedControl) || Number(inheritedControl) < 3) {
    throw new HandoverError(
      'ERR_BAD_INHERITANCE',
      `${CONTROL_ENV}=${JSON.stringify(inheritedControl.slice(0, 40))} is not a control channel fd`,
    )
  }
  return Number(inheritedControl)
}

/** The socket-request channel's fd, if a supervisor (`handover run`) started this process. */
export function inheritedSupervisorFd(): number | undefined {
  if (inheritedSupervisor === undefined || inheritedControl === undefined) return undefined
  if (!/^\d{1,4}$/.test(inheritedSupervisor) || Number(inheritedSupervisor) < 3) {
    throw new HandoverError('ERR_BAD_INHERITANCE', `${SUPERVISOR_ENV}=${JSON.stringify(inheritedSupervisor.slice(0, 40))} is not a channel fd`)
  }
  return Number(inheritedSupervisor)
}

export interface HelloMessage {
  type: 'hello'
  version: number
  parentPid: number
  sockets: TransferEntry[]
}

export interface ReadyMessage {
  type: 'ready'
  pid: number
}

/**
 * Parent to child, after the hand-off: the parent has named the child the
 * service manager's main process (MAINPID=), so the child's READY=1 counts.
 * A child that does not know this message ignores it.
 */
export interface HandedOverMessage {
  type: 'handed-over'
}

/** Supervisor to worker: a newer generation serves, or the service stops; drain and exit. */
export interface DrainMessage {
  type: 'drain'
}

/** Worker to supervisor: `upg.upgrade()` in a worker asks for a new generation. */
export interface UpgradeRequestMessage {
  type: 'upgrade-request'
}

/** Supervisor to worker: how the generation asked for went. */
export interface UpgradeResultMessage {
  type: 'upgrade-result'
  ok: boolean
  /** The new workers' pids. */
  pids?: number[]
  code?: string
  message?: string
}

export type Message = HelloMessage | ReadyMessage | HandedOverMessage | DrainMessage | UpgradeRequestMessage | UpgradeResultMessage

const NETWORKS: readonly string[] = [...STREAM_NETWORKS, ...PACKET_NETWORKS]

function isTransferEntry(v: unknown): v is TransferEntry {
  const e = v as TransferEntry
  return (
    typeof e === 'object' && e !== null &&
    typeof e.key === 'string' && typeof e.address === 'string' && NETWORKS.includes(e.network) &&
    (e.fd === undefined || Number.isInteger(e.fd)) && (e.info === undefined || typeof e.info === 'string') &&
    (e.pid === undefined || Number.isInteger(e.pid)) &&
    (e.activated === undefined || typeof e.activated === 'boolean')
  )
}

/** Checks a decoded line; throws ERR_PROTOCOL with what was wrong. */
export function validateMessage(value: unknown): Message {
  const m = value as Message
  if (typeof m !== 'object' || m === null) throw new HandoverError('ERR_PROTOCOL', 'control message is not an object')
  if (m.type === 'ready' && Number.isInteger(m.pid)) return m
  if (m.type === 'handed-over' || m.type === 'drain' || m.type === 'upgrade-request') return m
  if (m.type === 'upgrade-result' && typeof m.ok === 'boolean') return m
  if (m.type === 'hello') {
    if (m.version !== PROTOCOL_VERSION) {
      throw new HandoverError('ERR_PROTOCOL', `the parent speaks protocol version ${String(m.version)}, this is ${PROTOCOL_VERSION}`)
    }
    if (Number.isInteger(m.parentPid) && Array.isArray(m.sockets) && m.sockets.every(isTransferEntry)) return m
  }
  throw new HandoverError('ERR_PROTOCOL', `malformed control message ${JSON.stringify(value).slice(0, 120)}`)
}

/**
 * JSON lines over the control socket. Emits 'message' (validated), 'error'
 * (ERR_PROTOCOL, after which nothing more is emitted) and 'close' (the other
 * side is gone).
 */
export class ControlChannel extends EventEmitter {
  private buffer = ''
  private failed = false
  closed = false

  constructor(readonly socket: Socket) {
    super()
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => this.onData(chunk))
    socket.on('error', () => this.onClose())
    socket.on('close', () => this.onClose())
    socket.on('end', () => this.onClose())
  }

  send(message: Message): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed || this.socket.destroyed) return resolve()
      // A peer that has gone away is reported through 'close'.
      this.socket.write(`${JSON.stringify(message)}\n`, () => resolve())
    })
  }

  /** Keeps the channel open without keeping the event loop alive. */
  unref(): void {
    this.socket.unref()
  }

  ref(): void {
    this.socket.ref()
  }

  destroy(): void {
    this.socket.destroy()
    this.onClose()
  }

  private onData(chunk: string): void {
    if (this.failed) return
    this.buffer += chunk
    let newline
    while ((newline = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, newline)
      this.buffer = this.buffer.slice(newline + 1)
      let message: Message
      try {
        message = validateMessage(JSON.parse(line))
      } catch (err) {
        const error = err instanceof HandoverError
          ? err
          : new HandoverError('ERR_PROTOCOL', `control message is not JSON: ${JSON.stringify(line.slice(0, 80))}`)
        return this.fail(error)
      }
      this.emit('message', message)
    }
    if (this.buffer.length > MAX_LINE) this.fail(new HandoverError('ERR_PROTOCOL', 'control message too long'))
  }

  private fail(error: HandoverError): void {
    this.failed = true
    this.buffer = ''
    this.emit('error', error)
  }

  private onClose(): void {
    if (this.closed) return
    this.closed = true
    this.emit('close')
  }
}

import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { PACKET_NETWORKS, STREAM_NETWORKS, type Network } from './address.js'
import { HandoverError } from './errors.js'

/** Set by the parent for the next generation: the control channel's fd. */
export const CONTROL_ENV = 'HANDOVER_CONTROL'
/** Set by `handover run` for its workers: the fd of the channel that answers socket requests. */
export const SUPERVISOR_ENV = 'HANDOVER_SUPERVISOR'

/**
 * The protocol versions this release speaks. The compatibility rule: within
 * one major release of handover, a new protocol version is only ever added at
 * the top, never dropped at the bottom, and the hello keeps a shape that every
 * version of the major reads (new fields are optional and ignored by readers
 * that do not know them). So any two releases of one major hand over in both
 * directions. Mutable only for tests, which play a release with another range.
 */
export const protocolVersions = { min: 1, max: 1 }

/** Lines other than the hello: ready, handed-over, refused. */
export const MAX_LINE = 1 << 20
/**
 * The hello names every socket, ~100-300 bytes each: 1 MiB stopped at about
 * 4,500 unix listeners. 256 MiB is far beyond any fd limit's worth of entries
 * and still bounds what a broken parent can make the child buffer.
 */
export const MAX_HELLO_LINE = 1 << 28

/**
 * Taken out of process.env when handover is first imported, so that no
 * process the application spawns later believes it has a handover parent.
 */
const inheritedControl: string | undefined = process.env[CONTROL_ENV]
const inheritedSupervisor: string | undefined = process.env[SUPERVISOR_ENV]
delete process.env[CONTROL_ENV]
delete process.env[SUPERVISOR_ENV]

/**
 * A new generation ignores SIGHUP from here until its ready(): a SIGHUP for
 * the old process (to the process group, or `pkill -HUP -f`, which matches
 * this process's identical command line) would otherwise kill it before the
 * app has installed its own handler. It cannot be ignored earlier: Node resets
 * every inherited signal disposition at start-up, so a parent cannot pass
 * SIG_IGN on. With the app's own handler installed too, both run.
 */
function startingSighup(): void {
  if (process.listenerCount('SIGHUP') === 1) {
    process.emitWarning('SIGHUP ignored: this new generation is still starting', { type: 'HandoverWarning' })
  }
}
if (inheritedControl !== undefined && process.platform !== 'win32') process.on('SIGHUP', startingSighup)

/** At ready() or stop(): SIGHUP is the app's again (without a handler of its own, it ends the process). */
export function releaseStartingSighup(): void {
  process.removeListener('SIGHUP', startingSighup)
}

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

/** One socket as the hello describes it to the next generation. */
export interface TransferEntry {
  key: string
  network: Network
  address: string
  /** POSIX: the fd number the socket has in the child. */
  fd?: number
  /** Windows: the base64 WSAPROTOCOL_INFOW duplicated for the child. */
  info?: string
  /** Windows: the pid `info` was duplicated for; no other process may import it. */
  pid?: number
  /** From socket activation: the service manager owns the unix socket file, so no generation removes it. */
  activated?: boolean
}

export interface HelloMessage {
  type: 'hello'
  /**
   * The lowest version the parent speaks. Protocol 1 releases read only this
   * field and demand exactly 1, so a parent that can speak 1 must say 1.
   */
  version: number
  /** [min, max]: every version the parent speaks. Absent from protocol 1 releases: [version, version]. */
  versions?: [number, number]
  parentPid: number
  sockets: TransferEntry[]
}

export interface ReadyMessage {
  type: 'ready'
  pid: number
  /** The version the child chose from the hello's range. Absent from protocol 1 releases: 1. */
  version?: number
}

/**
 * Child to parent, instead of ready, just before create() rejects: why this
 * process cannot take over, so that the parent's error can say so. A protocol
 * 1 parent reads it as a malformed message and quotes its start.
 */
export interface RefusedMessage {
  type: 'refused'
  code: string
  message: string
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

export type Message = HelloMessage | ReadyMessage | HandedOverMessage | RefusedMessage | DrainMessage | UpgradeRequestMessage | UpgradeResultMessage

/** This process's hello to a process it started: the sockets, and the protocol range it speaks. */
export function helloMessage(sockets: TransferEntry[]): HelloMessage {
  const { min, max } = protocolVersions
  // `version` is the lowest: protocol 1 releases read only that field and demand exactly 1.
  return { type: 'hello', version: min, versions: [min, max], parentPid: process.pid, sockets }
}

/** The range a hello offers: `versions` when it is well formed, else just `version`. */
export function offeredVersions(hello: HelloMessage): [number, number] {
  const v = hello.versions
  if (Array.isArray(v) && v.length === 2 && Number.isInteger(v[0]) && Number.isInteger(v[1]) && v[0] <= v[1]) return [v[0], v[1]]
  return [hello.version, hello.version]
}

/**
 * The highest version both sides speak; throws ERR_INCOMPATIBLE, naming both
 * ranges, when there is none.
 */
export function chooseVersion(hello: HelloMessage): number {
  const [min, max] = offeredVersions(hello)
  const chosen = Math.min(max, protocolVersions.max)
  if (chosen < Math.max(min, protocolVersions.min)) {
    throw new HandoverError(
      'ERR_INCOMPATIBLE',
      `the parent speaks handover protocol ${range(min, max)}, this process speaks ${range(protocolVersions.min, protocolVersions.max)}`,
    )
  }
  return chosen
}

function range(min: number, max: number): string {
  return min === max ? `version ${min}` : `versions ${min} to ${max}`
}

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

/**
 * Checks a decoded line; throws ERR_PROTOCOL with what was wrong. Fields it
 * does not know are ignored, so a later release may add some. The version is
 * not checked here: chooseVersion() does that, with a reason to pass back.
 */
export function validateMessage(value: unknown): Message {
  const m = value as Message
  if (typeof m !== 'object' || m === null) throw new HandoverError('ERR_PROTOCOL', 'control message is not an object')
  if (m.type === 'ready' && Number.isInteger(m.pid) && (m.version === undefined || Number.isInteger(m.version))) return m
  if (m.type === 'handed-over') return m
  if (m.type === 'refused' && typeof m.code === 'string' && typeof m.message === 'string') return m
  if (m.type === 'drain' || m.type === 'upgrade-request') return m
  if (m.type === 'upgrade-result' && typeof m.ok === 'boolean') return m
  if (m.type === 'hello') {
    if (Number.isInteger(m.version) && Number.isInteger(m.parentPid) && Array.isArray(m.sockets) && m.sockets.every(isTransferEntry)) return m
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

  /** maxLine: the longest line accepted; a child reading the hello passes MAX_HELLO_LINE. */
  constructor(readonly socket: Socket, private maxLine = MAX_LINE) {
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

  /** Lowers the line limit once the one long line (the hello) has been read. */
  limitLines(maxLine: number): void {
    this.maxLine = maxLine
  }

  private onData(chunk: string): void {
    if (this.failed) return
    // Only the new chunk can hold the next newline: rescanning the whole
    // buffer would make a hello of many chunks quadratic.
    let newline = chunk.indexOf('\n')
    if (newline !== -1) newline += this.buffer.length
    this.buffer += chunk
    for (; newline !== -1; newline = this.buffer.indexOf('\n')) {
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
    if (this.buffer.length > this.maxLine) this.fail(new HandoverError('ERR_PROTOCOL', `control message longer than ${this.maxLine} characters`))
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

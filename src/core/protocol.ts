import { PACKET_NETWORKS, STREAM_NETWORKS, type Network } from './address.js'
import { HandoverError } from './errors.js'

/**
 * The protocol versions this release speaks. The compatibility rule: within
 * one major release of handover, a new protocol version is only ever added at
 * the top, never dropped at the bottom, and the hello keeps a shape that every
 * version of the major reads (new fields are optional and ignored by readers
 * that do not know them). So any two releases of one major hand over in both
 * directions. Mutable only for tests, which play a release with another range.
 *
 * Version 2 adds a generation passing a deploy it could not run on to the
 * next one (upgrade-request, and upgrade-result back), connections
 * moving between processes (ready's `adopts`, connection and adopted), the
 * supervisor's heartbeat (ping, and pong back, with the worker's counts:
 * requests, responses and 5xx for --max-error-rate, movable connections for
 * balancing), pause and resume (--keep-old) and shed (balancing). A message
 * of a version is sent only to a peer that chose it; a pong field a worker
 * does not send means it does not count that (the supervisor then leaves
 * it out of the error-rate guard and of balancing). The first release to
 * land speaks 1 only: everything of version 2 came in one round.
 */
export const protocolVersions: VersionRange = { min: 1, max: 2 }

export interface VersionRange {
  min: number
  max: number
}

/** Lines other than the hello. */
export const MAX_LINE = 1 << 20
/**
 * The hello names every socket, ~100-300 bytes each: 1 MiB stopped at about
 * 4,500 unix listeners. 256 MiB is far beyond any fd limit's worth of entries
 * and still bounds what a broken parent can make the child buffer.
 */
export const MAX_HELLO_LINE = 1 << 28

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
  /**
   * TLS session-ticket keys (48 bytes, base64) by socket key: the new
   * generation's TLS server on that socket starts with them, so that a
   * client's session resumes there (http/ticket-keys.ts). Only ever sent
   * over the channel between the two processes. Older releases ignore it.
   * Another shape (a future rotation with more keys) needs another field.
   */
  ticketKeys?: Record<string, string>
}

export interface ReadyMessage {
  type: 'ready'
  pid: number
  /** The version the child chose from the hello's range. Absent from protocol 1 releases: 1. */
  version?: number
  /**
   * The keys of the hello's sockets it kept (claimed); it closed the rest.
   * A supervisor closes what no live worker uses. Absent from older
   * releases: then it may use any of them.
   */
  keys?: string[]
  /**
   * Protocol 2: the keys of the sockets on which it serves plain HTTP/1 and
   * takes idle keep-alive connections handed over (connection messages).
   */
  adopts?: string[]
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

/**
 * Worker to supervisor: `upg.upgrade()` in a worker asks for a new
 * generation (`queue`: join a follow-up if one is under way). Protocol 2,
 * a generation to the next one it handed over to: a deploy requested while
 * the next one started; run it.
 */
export interface UpgradeRequestMessage {
  type: 'upgrade-request'
  queue?: boolean
  /** Between generations: echoed in the upgrade-result, so that answers find their requests. */
  id?: number
}

/** The answer to an upgrade-request: how the generation asked for went. */
export interface UpgradeResultMessage {
  type: 'upgrade-result'
  /** The id of the upgrade-request it answers, if that had one. */
  id?: number
  ok: boolean
  /** The new workers' pids. */
  pids?: number[]
  code?: string
  message?: string
}

/**
 * Protocol 2: an idle keep-alive connection accepted on the socket `key`,
 * its fd on this line (SCM_RIGHTS). From a generation to the next one, from
 * a draining worker to the supervisor, and from the supervisor to a worker.
 */
export interface ConnectionMessage {
  type: 'connection'
  id: number
  key: string
  fd: true
}

/** Protocol 2: the answer to a connection message. `ok`: adopted; else the sender serves it on. */
export interface AdoptedMessage {
  type: 'adopted'
  id: number
  ok: boolean
}

/**
 * Protocol 2, a new process to its parent before its ready: its ready probe
 * failed (and is retried). The parent's ready timeout then fails the
 * upgrade with ERR_NOT_HEALTHY and the last of these, not a bare timeout.
 */
export interface ProbeMessage {
  type: 'probe'
  path: string
  status?: number
  body?: string
  error?: string
}

/**
 * Protocol 2, supervisor to worker: answer with a pong of the same id. The
 * answer comes from the worker's event loop, so a worker whose loop is
 * blocked or stopped (SIGSTOP) does not answer: --watchdog replaces it.
 */
export interface PingMessage {
  type: 'ping'
  id: number
}

/** Protocol 2, the answer to a ping, with what only the worker knows. */
export interface PongMessage {
  type: 'pong'
  id: number
  /** HTTP requests its servers have received so far, where the preload counts them. */
  requests?: number
  /** HTTP responses its servers have finished so far, and how many of them were 5xx (diagnostics_channel). */
  responses?: number
  serverErrors?: number
  /**
   * Its open connections that could be handed over (plain HTTP/1, not
   * upgraded), by socket key: what the supervisor balances (balancer.ts).
   * Absent from older releases, which are then not balanced.
   */
  open?: Record<string, number>
}

/**
 * Protocol 2, supervisor to worker (`handover run`, balancing): hand `count`
 * of your idle HTTP/1 connections on socket `key` over, through the
 * supervisor, to the least-loaded worker. Sent only to a worker whose pongs
 * report `open`, so an older release never gets one. A newer one replaces
 * the one before for that key.
 */
export interface ShedMessage {
  type: 'shed'
  key: string
  count: number
}

/**
 * Protocol 2, supervisor to worker (`handover run --keep-old`): a newer
 * generation serves; stop accepting and hand idle connections over, but stay
 * (for a rollback) instead of draining. `resume`: serve again (a rollback).
 */
export interface PauseMessage {
  type: 'pause'
}

export interface ResumeMessage {
  type: 'resume'
}

export type Message =
  | HelloMessage | ReadyMessage | HandedOverMessage | RefusedMessage | DrainMessage | UpgradeRequestMessage | UpgradeResultMessage
  | ConnectionMessage | AdoptedMessage | ProbeMessage | PingMessage | PongMessage | PauseMessage | ResumeMessage | ShedMessage

/** This process's hello to a process it started: the sockets, the protocol range it speaks, and any TLS ticket keys. */
export function helloMessage(sockets: TransferEntry[], ticketKeys?: Record<string, string>): HelloMessage {
  const { min, max } = protocolVersions
  // `version` is the lowest: protocol 1 releases read only that field and demand exactly 1.
  const hello: HelloMessage = { type: 'hello', version: min, versions: [min, max], parentPid: process.pid, sockets }
  if (ticketKeys && Object.keys(ticketKeys).length > 0) hello.ticketKeys = ticketKeys
  return hello
}

/** One set of TLS session-ticket keys as the protocol carries it: 48 bytes (Node's only size), base64, unpadded. */
export function isTicketKeys(v: unknown): v is string {
  return typeof v === 'string' && /^[A-Za-z0-9+/]{64}$/.test(v)
}

function isTicketKeyTable(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every(isTicketKeys)
}

/** The range a hello offers: `versions` when it is well formed, else just `version`. */
export function offeredVersions(hello: HelloMessage): [number, number] {
  const v = hello.versions
  if (Array.isArray(v) && v.length === 2 && Number.isInteger(v[0]) && Number.isInteger(v[1]) && v[0] <= v[1]) return [v[0], v[1]]
  return [hello.version, hello.version]
}

/**
 * The highest version both sides speak: the hello's range and `ours`;
 * throws ERR_INCOMPATIBLE, naming both ranges, when there is none.
 */
export function chooseVersion(hello: HelloMessage, ours: VersionRange): number {
  const [min, max] = offeredVersions(hello)
  const chosen = Math.min(max, ours.max)
  if (chosen < Math.max(min, ours.min)) {
    throw new HandoverError(
      'ERR_INCOMPATIBLE',
      `the parent speaks handover protocol ${range(min, max)}, this process speaks ${range(ours.min, ours.max)}`,
    )
  }
  return chosen
}

function range(min: number, max: number): string {
  return min === max ? `version ${min}` : `versions ${min} to ${max}`
}

/** Absent, or a count. */
function isCount(v: unknown): boolean {
  return v === undefined || (Number.isSafeInteger(v) && (v as number) >= 0)
}

/** Absent, or counts by key. */
function isCountTable(v: unknown): boolean {
  return v === undefined || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((c) => c !== undefined && isCount(c)))
}

function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string')
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
  if (
    m.type === 'ready' && Number.isInteger(m.pid) && (m.version === undefined || Number.isInteger(m.version)) &&
    (m.keys === undefined || isStrings(m.keys)) && (m.adopts === undefined || isStrings(m.adopts))
  ) return m
  if (m.type === 'connection' && Number.isInteger(m.id) && typeof m.key === 'string' && m.fd === true) return m
  if (m.type === 'adopted' && Number.isInteger(m.id) && typeof m.ok === 'boolean') return m
  if (
    m.type === 'probe' && typeof m.path === 'string' && (m.status === undefined || Number.isInteger(m.status)) &&
    (m.body === undefined || typeof m.body === 'string') && (m.error === undefined || typeof m.error === 'string')
  ) return m
  if (m.type === 'handed-over') return m
  if (m.type === 'refused' && typeof m.code === 'string' && typeof m.message === 'string') return m
  if (m.type === 'drain' || m.type === 'upgrade-request') return m
  if (m.type === 'upgrade-result' && typeof m.ok === 'boolean') return m
  if (m.type === 'ping' && Number.isSafeInteger(m.id)) return m
  if (m.type === 'pong' && Number.isSafeInteger(m.id) && [m.requests, m.responses, m.serverErrors].every(isCount) && isCountTable(m.open)) return m
  if (m.type === 'shed' && typeof m.key === 'string' && Number.isSafeInteger(m.count) && m.count > 0) return m
  if (m.type === 'pause' || m.type === 'resume') return m
  if (m.type === 'hello') {
    if (
      Number.isInteger(m.version) && Number.isInteger(m.parentPid) && Array.isArray(m.sockets) && m.sockets.every(isTransferEntry) &&
      (m.ticketKeys === undefined || isTicketKeyTable(m.ticketKeys))
    ) return m
  }
  // Secrets never reach an error message (which may be logged): a hello's ticket keys are left out.
  const shown = m.type === 'hello' && 'ticketKeys' in m ? { ...m, ticketKeys: '(not shown)' } : value
  throw new HandoverError('ERR_PROTOCOL', `malformed control message ${JSON.stringify(shown).slice(0, 120)}`)
}

import { lstatSync, readFileSync, type Stats } from 'node:fs'
import net from 'node:net'
import type { Listener, SocketTable } from '../core/listeners.js'
import { MAX_TIMEOUT, parseMs } from '../core/options.js'

/** What the control socket can ask of the Upgrader. */
export interface ControlTarget {
  /** Resolves with the new pid, and anything else the answer should carry. `queue`: join a follow-up of an upgrade under way. */
  upgrade(options: { signal?: AbortSignal; queue?: boolean }): Promise<{ pid: number }>
  readonly hasParent: boolean
  /** The supervisor's fuller status (workers, generation); the Upgrader has none. */
  status?(): object
  /** The supervisor with --keep-old: the kept generation serves again; the Upgrader has none (ERR_UNSUPPORTED). */
  rollback?(): Promise<{ pid: number }>
}

export type ControlAnswer =
  | { ok: true; pid: number; [field: string]: unknown }
  | { ok: false; code: string; message: string }

const MAX_LINE = 1024

/** The file at the socket path, as it was when this generation claimed it. */
interface FileIdentity {
  dev: number
  ino: number
}

/**
 * The control socket: a unix stream socket that takes one line command per
 * connection and answers one JSON line. It is one more socket in the socket
 * table, so it is passed on at every upgrade and stays listening throughout;
 * the old generation stops accepting on it once it has handed over. Commands:
 *
 *   upgrade [timeout-ms]  -> {"ok":true,"pid":<new pid>} | {"ok":false,"code":..,"message":..}
 *                            (during another upgrade: queued, and answered
 *                            with the follow-up generation that includes it)
 *   rollback              -> {"ok":true,"pid":..,"pids":[..],"generation":..} (handover run --keep-old)
 *   status                -> {"ok":true,"pid":<serving pid>,"hasParent":..}
 *                            plus socketPathMissing / socketPathReplaced: true
 *                            when the path no longer leads to this socket
 */
export class ControlServer {
  /**
   * Milliseconds a connection has, from accept, to send its command line,
   * however it sends (a client that dribbles bytes gets no longer), and
   * again, once answered, to read the answer. A real client sends its line
   * at once, so an idle connection goes quickly. While a command runs there
   * is no deadline: a status answers at once, an upgrade is bounded by its
   * own timeout. Static so that tests can shorten it; not an option.
   */
  static connectionDeadline = 5_000
  /**
   * Connections open at once before the oldest one still without a command
   * is closed to make room (never one whose command has been read).
   * Undefined: from the fd limit, see connectionBound(). Static for tests.
   */
  static maxConnections: number | undefined = undefined

  private server?: net.Server
  /** Accepted, no command read yet, oldest first (a Set iterates in insertion order). */
  private readonly waiting = new Set<net.Socket>()
  private open = 0
  private bound = 0

  private constructor(private readonly listener: Listener, private readonly file: FileIdentity | undefined) {}

  /**
   * Claims the socket (inherited, or bound afresh) before ready(), so that
   * ready() does not close it as unclaimed. A fresh bind happens under a
   * umask that leaves exactly `mode`: no moment with wider permissions, and
   * nothing to chmod afterwards. An inherited socket's file is not touched:
   * the path may have been deleted since (a tmp cleaner), or replaced by a
   * symlink whose target a chmod by path would change. With `name`, the
   * socket table holds it under that name (ListenOptions.name): a later
   * generation finds the inherited socket by it whatever its path was.
   */
  static claim(table: SocketTable, path: string, mode: number, name?: string): ControlServer {
    const previous = process.umask(~mode & 0o777)
    let listener: Listener
    try {
      listener = table.listen('unix', path, false, name)
    } finally {
      process.umask(previous)
    }
    // Fresh: the file just bound. Inherited: the socket file found at the path, if any.
    const st = lstatOrUndefined(listener.path as string)
    return new ControlServer(listener, st?.isSocket() ? { dev: st.dev, ino: st.ino } : undefined)
  }

  /** The path it listens on: an inherited socket's own, which a `name` may have found under another path. */
  get path(): string {
    return this.listener.path as string
  }

  /** Starts answering, from ready() on, until the process hands over or stops. */
  serve(target: ControlTarget, done: Promise<void>): void {
    if (this.server) return
    this.bound = ControlServer.maxConnections ?? connectionBound()
    // No net maxConnections: it closes the newest connection, which is the
    // legitimate one when idle ones hold every slot. onConnection evicts instead.
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.onConnection(socket, target))
    server.on('error', (err: NodeJS.ErrnoException) => {
      process.emitWarning(`the control socket ${this.listener.address} stopped serving: ${err.message}`, { type: 'HandoverWarning', code: err.code })
    })
    // listen() again on the held socket with a longer queue than the 511 it
    // was bound with: a burst of clients waits in the kernel instead of
    // failing to connect with EAGAIN (Linux caps it at net.core.somaxconn).
    server.listen(this.listener, LISTEN_BACKLOG)
    // The application's own servers decide when the process may exit.
    server.unref()
    this.server = server
    void done.then(() => this.close())
  }

  /** Stops accepting; answers still owed are written. The socket itself stays with the table. */
  close(): void {
    this.server?.close()
  }

  private onConnection(socket: net.Socket, target: ControlTarget): void {
    let buffer = ''
    let answered = false
    let deadline: NodeJS.Timeout | undefined
    const startDeadline = (): void => {
      clearTimeout(deadline)
      deadline = setTimeout(() => socket.destroy(), ControlServer.connectionDeadline).unref()
    }
    this.open++
    this.waiting.add(socket)
    socket.on('close', () => {
      this.open--
      this.waiting.delete(socket)
      clearTimeout(deadline)
    })
    socket.on('error', () => {})
    if (this.open > this.bound) {
      // The oldest connection that has not sent a command makes room. If that
      // is this one, every other connection is running a command: refuse this one.
      const oldest = this.waiting.values().next().value as net.Socket
      oldest.destroy()
      if (oldest === socket) return
    }
    startDeadline()
    socket.setEncoding('utf8')
    const handle = (line: string): void => {
      answered = true
      this.waiting.delete(socket)
      socket.removeAllListeners('data')
      // No deadline while the command runs: status answers at once, an upgrade is bounded by its timeout.
      clearTimeout(deadline)
      void run(line.trim(), target, () => this.pathState()).then((answer) => {
        if (socket.destroyed) return
        socket.end(`${JSON.stringify(answer)}\n`)
        // A client that does not read its answer does not keep the connection.
        startDeadline()
      })
    }
    socket.on('data', (chunk: string) => {
      buffer += chunk
      const newline = buffer.indexOf('\n')
      if (newline !== -1) handle(buffer.slice(0, newline))
      else if (buffer.length > MAX_LINE) handle(buffer)
    })
    // `printf upgrade | nc -U` sends no newline before its EOF.
    socket.on('end', () => {
      if (!answered) handle(buffer)
    })
  }

  /** For status: whether the path still leads to this socket. Read-only: lstat never follows a symlink. */
  private pathState(): Record<string, true> {
    const st = lstatOrUndefined(this.listener.path as string)
    if (st === undefined) return { socketPathMissing: true }
    if (this.file === undefined || !st.isSocket() || st.dev !== this.file.dev || st.ino !== this.file.ino) return { socketPathReplaced: true }
    return {}
  }
}

/** The listen() queue asked for; the kernel caps it (net.core.somaxconn: 4096 since Linux 5.4). */
const LISTEN_BACKLOG = 4096

/**
 * How many control connections may be open at once: a quarter of the
 * process's fd limit (Node raises the soft limit to the hard one at start),
 * between 64 and 1024, so that a flood of control clients cannot take the
 * fds the application's own sockets need.
 */
export function connectionBound(limitsText?: string): number {
  let text = limitsText
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8')
    } catch {
      return 1024 // No procfs: the cap alone.
    }
  }
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(text)?.[1]
  if (soft === undefined || soft === 'unlimited') return 1024
  return Math.min(1024, Math.max(64, Math.floor(Number(soft) / 4)))
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path)
  } catch {
    return undefined
  }
}

async function run(line: string, target: ControlTarget, pathState: () => Record<string, true>): Promise<ControlAnswer> {
  if (line.length > MAX_LINE) return badCommand(`a command is one line of at most ${MAX_LINE} characters`)
  const [command, ...args] = line.split(/\s+/)
  if (command === 'status' && args.length === 0) {
    return { ok: true, pid: process.pid, hasParent: target.hasParent, ...target.status?.(), ...pathState() }
  }
  if (command === 'upgrade' && args.length <= 1) {
    const timeout = args.length === 0 ? undefined : parseMs(args[0], 1)
    if (args.length === 1 && timeout === undefined) {
      return badCommand(`upgrade takes a timeout in ms from 1 to ${MAX_TIMEOUT}, not ${JSON.stringify(args[0])}`)
    }
    return upgrade(target, timeout)
  }
  if (command === 'rollback' && args.length === 0) return rollback(target)
  return badCommand(`unknown command ${JSON.stringify(line.slice(0, 80))}: use "upgrade [timeout-ms]", "rollback" or "status"`)
}

async function rollback(target: ControlTarget): Promise<ControlAnswer> {
  if (!target.rollback) {
    return { ok: false, code: 'ERR_UNSUPPORTED', message: 'rollback needs handover run --keep-old: a single process does not keep its previous generation' }
  }
  try {
    return { ...(await target.rollback()), ok: true }
  } catch (err) {
    const e = err as { code?: string; message?: string }
    return { ok: false, code: e?.code ?? 'ERR_UNKNOWN', message: e?.message ?? String(err) }
  }
}

async function upgrade(target: ControlTarget, timeout: number | undefined): Promise<ControlAnswer> {
  const signal = timeout === undefined ? undefined : AbortSignal.timeout(timeout)
  try {
    // A deploy that arrives during another one is queued, and answered with the generation that includes it.
    const result = await target.upgrade({ signal, queue: true })
    return { ...result, ok: true }
  } catch (err) {
    const e = err as { code?: string; message?: string }
    // The caller's deadline ran out: the child was killed like one that missed upgradeTimeout.
    if (signal?.aborted && e?.code === 'ERR_ABORTED') {
      return { ok: false, code: 'ERR_UPGRADE_TIMEOUT', message: `the new process was not ready within the ${timeout} ms the caller allowed; it was killed` }
    }
    return { ok: false, code: e?.code ?? 'ERR_UNKNOWN', message: e?.message ?? String(err) }
  }
}

function badCommand(message: string): ControlAnswer {
  return { ok: false, code: 'ERR_BAD_COMMAND', message }
}

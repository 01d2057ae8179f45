import { chmodSync } from 'node:fs'
import net from 'node:net'
import { systemError } from './errors.js'
import type { Listener, SocketTable } from './listeners.js'

/** What the control socket can ask of the Upgrader. */
export interface ControlTarget {
  upgrade(options: { signal?: AbortSignal }): Promise<{ pid: number }>
  readonly hasParent: boolean
}

export type ControlAnswer =
  | { ok: true; pid: number; [field: string]: unknown }
  | { ok: false; code: string; message: string }

const MAX_LINE = 1024
/** A client that connects and says nothing is dropped after this long. */
const IDLE_TIMEOUT = 10_000
const MAX_UPGRADE_TIMEOUT = 2_147_483_647

/**
 * The control socket: a unix stream socket that takes one line command per
 * connection and answers one JSON line. It is one more socket in the socket
 * table, so it is passed on at every upgrade and stays listening throughout;
 * the old generation stops accepting on it once it has handed over. Commands:
 *
 *   upgrade [timeout-ms]  -> {"ok":true,"pid":<new pid>} | {"ok":false,"code":..,"message":..}
 *   status                -> {"ok":true,"pid":<serving pid>,"hasParent":..}
 */
export class ControlServer {
  private server?: net.Server

  private constructor(private readonly listener: Listener) {}

  /**
   * Claims the socket (inherited, or bound afresh) before ready(), so that
   * ready() does not close it as unclaimed. A fresh bind happens under a
   * umask that leaves exactly `mode`: no moment with wider permissions.
   */
  static claim(table: SocketTable, path: string, mode: number): ControlServer {
    const previous = process.umask(~mode & 0o777)
    let listener: Listener
    try {
      listener = table.listen('unix', path, false)
    } finally {
      process.umask(previous)
    }
    // An inherited socket keeps its file; make it match this generation's mode.
    try {
      chmodSync(listener.path as string, mode)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      throw systemError({ errno: -(e.errno ?? 0), syscall: 'chmod', message: e.message }, `control socket ${listener.path}`)
    }
    return new ControlServer(listener)
  }

  /** Starts answering, from ready() on, until the process hands over or stops. */
  serve(target: ControlTarget, done: Promise<void>): void {
    if (this.server) return
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.onConnection(socket, target))
    server.on('error', (err: NodeJS.ErrnoException) => {
      process.emitWarning(`the control socket ${this.listener.address} stopped serving: ${err.message}`, { type: 'HandoverWarning', code: err.code })
    })
    server.listen(this.listener)
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
    socket.setEncoding('utf8')
    socket.setTimeout(IDLE_TIMEOUT, () => socket.destroy())
    socket.on('error', () => {})
    const handle = (line: string): void => {
      answered = true
      socket.setTimeout(0)
      socket.removeAllListeners('data')
      void run(line.trim(), target).then((answer) => socket.end(`${JSON.stringify(answer)}\n`))
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
}

async function run(line: string, target: ControlTarget): Promise<ControlAnswer> {
  if (line.length > MAX_LINE) return badCommand(`a command is one line of at most ${MAX_LINE} characters`)
  const [command, ...args] = line.split(/\s+/)
  if (command === 'status' && args.length === 0) {
    return { ok: true, pid: process.pid, hasParent: target.hasParent }
  }
  if (command === 'upgrade' && args.length <= 1) {
    const timeout = args.length === 0 ? undefined : Number(args[0])
    if (timeout !== undefined && !(/^\d+$/.test(args[0]) && timeout > 0 && timeout <= MAX_UPGRADE_TIMEOUT)) {
      return badCommand(`upgrade takes a timeout in ms from 1 to ${MAX_UPGRADE_TIMEOUT}, not ${JSON.stringify(args[0])}`)
    }
    return upgrade(target, timeout)
  }
  return badCommand(`unknown command ${JSON.stringify(line.slice(0, 80))}: use "upgrade [timeout-ms]" or "status"`)
}

async function upgrade(target: ControlTarget, timeout: number | undefined): Promise<ControlAnswer> {
  const signal = timeout === undefined ? undefined : AbortSignal.timeout(timeout)
  try {
    const { pid } = await target.upgrade({ signal })
    return { ok: true, pid }
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

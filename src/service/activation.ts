import type { BindSpec, Network } from '../core/address.js'
import type { OsSocket, PlatformBackend, SocketInfo } from '../backend/types.js'
import { HandoverError, systemError } from '../core/errors.js'
import { mismatch, specOf, unfitFor } from '../core/socket-fit.js'

/** systemd's socket activation variables (sd_listen_fds(3)). */
export const LISTEN_ENV = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const
/** SD_LISTEN_FDS_START: the first passed socket is fd 3. */
const FIRST_FD = 3
/** More than any .socket unit passes; a bound on what a broken variable can make us touch. */
const MAX_FDS = 4096

/**
 * Read and removed when handover is first imported, whatever LISTEN_PID
 * says, as sd_listen_fds(1) does: they describe fds of one process, and in
 * any other (the next generation, the app's children) they can only mislead.
 */
const passed = { pid: process.env.LISTEN_PID, fds: process.env.LISTEN_FDS, names: process.env.LISTEN_FDNAMES }
for (const name of LISTEN_ENV) delete process.env[name]

export interface ListenOptions {
  /**
   * Claim the activated socket with this name (FileDescriptorName= in the
   * .socket unit, LISTEN_FDNAMES) whatever its address; the address is the
   * fallback when no socket of that name was passed. The name then
   * identifies the socket in later generations too.
   */
  name?: string
}

/** Validates listen()'s options; returns the name, if any. */
export function listenName(options: ListenOptions | undefined): string | undefined {
  if (options === undefined) return undefined
  const bad = (what: string, value: unknown): HandoverError =>
    new HandoverError('ERR_INVALID_OPTION', `${what}, not ${JSON.stringify(value) ?? String(value)}`)
  if (typeof options !== 'object' || options === null) throw bad('listen options must be an object', options)
  const { name } = options
  if (name === undefined) return undefined
  // systemd's own rule for FileDescriptorName=.
  if (typeof name !== 'string' || !/^[\x21-\x39\x3b-\x7e]{1,255}$/.test(name)) {
    throw bad('option name must be 1 to 255 printable ASCII characters without ":" or spaces', name)
  }
  return name
}

/** The table key of a socket claimed by name: no address key starts with "name". */
export function nameKey(name: string): string {
  return `name ${name}`
}

interface Passed {
  fd: OsSocket
  name: string
  info: SocketInfo
  claimed: boolean
}

export interface ActivatedClaim {
  socket: OsSocket
  info: SocketInfo
}

function bad(message: string): HandoverError {
  return new HandoverError('ERR_BAD_INHERITANCE', `socket activation: ${message}`)
}

/**
 * The sockets a service manager passed to this process: listen() claims
 * them by address or by name, ready() closes the rest. Each is held as a
 * close-on-exec duplicate, and the original at fd 3, 4, ... is closed, so
 * no activated socket leaks into a process the application spawns.
 *
 * Every fd LISTEN_FDS counts must be an open socket, or take() throws
 * before it has duplicated or closed any of them. An fd that is not a
 * socket is never closed: LISTEN_FDS may be a lie (LISTEN_PID=$$ set by
 * hand, no fd passed), and fd 3 is then node's own epoll fd, whose closing
 * aborts the process. A FIFO or special file a unit really passed
 * (ListenFIFO= and the like) is nothing handover could serve either.
 */
export class ActivatedSockets {
  private constructor(
    private readonly backend: PlatformBackend,
    private readonly sockets: Passed[],
  ) {}

  /** Undefined unless LISTEN_PID names this process and LISTEN_FDS is above 0. */
  static take(backend: PlatformBackend): ActivatedSockets | undefined {
    const { pid, fds, names } = passed
    if (pid === undefined || fds === undefined || !/^\d+$/.test(pid) || Number(pid) !== process.pid) return undefined
    if (!/^\d{1,5}$/.test(fds) || Number(fds) > MAX_FDS) throw bad(`LISTEN_FDS=${JSON.stringify(fds.slice(0, 20))} is not a count of fds`)
    const count = Number(fds)
    if (count === 0) return undefined
    const nameList = names === undefined ? [] : names.split(':')
    if (names !== undefined && nameList.length !== count) {
      throw bad(`LISTEN_FDNAMES has ${nameList.length} names for ${count} fds`)
    }
    // First look at every fd, touching none: an error leaves them all as they were.
    const infos: SocketInfo[] = []
    for (let i = 0; i < count; i++) {
      const fd = FIRST_FD + i
      try {
        infos.push(backend.inspect(fd))
      } catch (err) {
        if (systemError(err, `fd ${fd}`).code !== 'ENOTSOCK') throw bad(`LISTEN_FDS=${count} but fd ${fd} is not open`)
        throw bad(`LISTEN_FDS=${count} but fd ${fd} is not a socket; handover leaves it open and can only use sockets`)
      }
    }
    const sockets: Passed[] = []
    try {
      for (let i = 0; i < count; i++) {
        const fd = FIRST_FD + i
        let copy: number
        try {
          copy = backend.duplicate(fd)
        } catch (err) {
          throw systemError(err, `activated fd ${fd}`)
        }
        backend.close(fd)
        // sd_listen_fds_with_names() says "unknown" for a socket without a name.
        sockets.push({ fd: copy, name: nameList[i] || 'unknown', info: infos[i], claimed: false })
      }
    } catch (err) {
      for (const s of sockets) backend.close(s.fd)
      throw err
    }
    return new ActivatedSockets(backend, sockets)
  }

  /** The unclaimed socket whose type and bound address are what `spec` asks for. */
  claim(spec: BindSpec): ActivatedClaim | undefined {
    const found = this.sockets.find((s) => !s.claimed && mismatch(spec, s.info, true) === undefined)
    if (!found) return undefined
    found.claimed = true
    return { socket: found.fd, info: found.info }
  }

  /** The socket named `name`, checked against the network it is claimed for; a spec describes what it really is. */
  claimByName(name: string, network: Network, packet: boolean): (ActivatedClaim & { spec: BindSpec }) | undefined {
    const named = this.sockets.filter((s) => s.name === name)
    if (named.length > 1) {
      throw new HandoverError(
        'ERR_INVALID_OPTION',
        `${named.length} activated sockets are named ${JSON.stringify(name)}: give each its own FileDescriptorName=, or claim them by address`,
      )
    }
    const found = named[0]
    if (!found || found.claimed) return undefined
    const problem = unfitFor(network, packet, found.info)
    if (problem) throw bad(`the socket named ${JSON.stringify(name)} ${problem}`)
    found.claimed = true
    return { socket: found.fd, info: found.info, spec: specOf(nameKey(name), network, found.info) }
  }

  /** At ready(): what nothing claimed is closed, as for inherited sockets. */
  closeUnclaimed(): void {
    for (const s of this.sockets) {
      if (s.claimed) continue
      s.claimed = true
      this.backend.close(s.fd)
    }
  }
}

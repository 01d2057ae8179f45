import type { BindSpec, Network } from './address.js'
import { HandoverError, systemError } from './errors.js'
import { inherited } from './inherited-env.js'
import type { OsSocket, PlatformBackend, SocketInfo } from './platform.js'
import { mismatch, specOf, unfitFor } from './socket-fit.js'

/** SD_LISTEN_FDS_START: the first passed socket is fd 3. */
const FIRST_FD = 3
/** More than any .socket unit passes; a bound on what a broken variable can make us touch. */
const MAX_FDS = 4096

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
    // Read (and removed from the environment) at import, whatever LISTEN_PID says, as sd_listen_fds(1) does.
    const { listenPid: pid, listenFds: fds, listenFdNames: names } = inherited
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

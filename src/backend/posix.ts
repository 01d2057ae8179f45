import { closeSync } from 'node:fs'
import type { Socket } from 'node:net'
import type { BindSpec } from '../core/address.js'
import { HandoverError, systemError } from '../core/errors.js'
import { ENV } from '../core/options.js'
import type { OsSocket, PlatformBackend, SpawnRequest, SpawnedChild, Transport } from '../core/platform.js'
import type { TransferEntry } from '../core/protocol.js'
import { posixAddon } from './addon.js'
import { SOCK_DGRAM, SOCK_STREAM, type PosixAddon } from './posix-addon.js'
import { PosixChannel, socketPair } from './posix-channel.js'

/** What `handover run` adds for its workers on POSIX. */
export interface PosixSpawnRequest extends SpawnRequest {
  /** The child's stdout and stderr as pipes (the supervisor prefixes its lines) instead of this process's own. */
  pipeOutput?: boolean
}

/** The channel to the parent sits at fd 3 in the child; a worker's request channel at 4; the sockets follow. */
const CHANNEL_FD = 3
const REQUEST_FD = 4
const FIRST_SOCKET_FD = 4

export class PosixBackend implements PlatformBackend {
  private readonly addon: PosixAddon = posixAddon()

  bind(spec: BindSpec, backlog: number): OsSocket {
    if (spec.kind === 'unix') return this.addon.bindUnix(spec.path, spec.abstract, backlog)
    const kind = spec.transport === 'stream' ? SOCK_STREAM : SOCK_DGRAM
    return this.addon.bindInet(kind, spec.family, spec.ip, spec.port, spec.v6only, backlog)
  }

  inspect(socket: OsSocket) {
    return this.addon.inspect(socket)
  }

  close(socket: OsSocket): void {
    try {
      closeSync(socket)
    } catch {
      // Already closed: nothing is left to release.
    }
  }

  duplicate(socket: OsSocket): OsSocket {
    return this.addon.duplicate(socket)
  }

  adoptable(socket: OsSocket) {
    return { fd: this.duplicate(socket) }
  }

  spawn(request: PosixSpawnRequest): SpawnedChild {
    // Close-on-exec duplicates: libuv dup2()s them to their slots in the
    // forked child, which clears the flag there and only there.
    const copies: number[] = []
    let child
    // The channel: a socketpair of our own rather than spawn's 'pipe', which
    // Node reads itself and which can therefore carry no fds. The child's end
    // goes in the stdio array like the sockets, and is closed here after.
    let pair: [number, number] | undefined
    try {
      pair = socketPair()
      copies.push(pair[1])
      for (const s of request.sockets) {
        try {
          copies.push(this.duplicate(s.socket))
        } catch (err) {
          throw systemError(err, `${s.network} ${s.address}`)
        }
      }
      const [channelEnd, ...sockets] = copies
      // A worker's request channel stays a 'pipe': the worker blocks on it in the addon, Node never reads it.
      const channels = request.worker ? [channelEnd, 'pipe'] : [channelEnd]
      // Taken here, not imported: node:child_process (and the dgram and
      // stream modules it loads) would load in every new generation, which
      // needs it only when it starts the next one.
      const { spawn } = process.getBuiltinModule('node:child_process')
      child = spawn(request.command, request.args, {
        cwd: request.cwd,
        env: { ...request.env, [ENV.channel]: String(CHANNEL_FD), ...(request.worker && { [ENV.supervisor]: String(REQUEST_FD) }) },
        stdio: ['inherit', ...(request.pipeOutput ? ['pipe', 'pipe'] : ['inherit', 'inherit']), ...channels, ...sockets] as Array<'inherit' | 'pipe' | number>,
        detached: request.worker === true,
      })
    } catch (err) {
      if (pair) this.close(pair[0])
      throw err
    } finally {
      // uv_spawn has forked and exec'd (or failed) by now.
      for (const fd of copies) this.close(fd)
    }
    // libuv's posix_spawn path clears O_NONBLOCK on passed fds in the parent,
    // and the flag lives in the shared open file description. libuv takes
    // that path on macOS, and its main branch (after 1.52.1) on Linux too;
    // after fork/exec this changes nothing. No loop turn has run since spawn().
    for (const s of request.sockets) this.addon.setNonBlocking(s.socket)
    const first = request.worker ? FIRST_SOCKET_FD + 1 : FIRST_SOCKET_FD
    const transfer: TransferEntry[] = request.sockets.map((s, i) => ({
      key: s.key,
      network: s.network,
      address: s.address,
      fd: first + i,
      ...(s.activated && { activated: true }),
    }))
    const requests = request.worker ? ((child.stdio?.[REQUEST_FD] ?? undefined) as Socket | undefined) : undefined
    let channel: PosixChannel | undefined
    try {
      channel = new PosixChannel(pair[0])
    } catch {
      // Out of fds for the native channel: the spawn is reported failed, and the child killed.
      this.close(pair[0])
    }
    return { child, channel, requests, transfer }
  }

  socketPair(): [OsSocket, OsSocket] {
    return socketPair()
  }

  receive(entry: TransferEntry): OsSocket {
    const fd = entry.fd
    // Bounded so the addon's int32 conversion cannot wrap a huge number onto stdout.
    if (!Number.isInteger(fd) || (fd as number) < FIRST_SOCKET_FD || (fd as number) > 0x7fffffff) {
      throw new HandoverError('ERR_BAD_INHERITANCE', `the parent named no valid fd for ${entry.key}`)
    }
    return fd as number
  }

  openChannel(fd: number): Transport {
    let info
    try {
      info = this.addon.inspect(fd)
    } catch (err) {
      throw new HandoverError('ERR_BAD_INHERITANCE', `channel fd ${fd} is not an open socket`, { cause: err })
    }
    if (info.family !== 'unix' || info.type !== 'stream') {
      throw new HandoverError('ERR_BAD_INHERITANCE', `channel fd ${fd} is not a unix stream socket`)
    }
    try {
      return new PosixChannel(fd)
    } catch (err) {
      throw new HandoverError('ERR_BAD_INHERITANCE', `channel fd ${fd} cannot be opened: ${(err as Error).message}`, { cause: err })
    }
  }

  sendSocket(channel: number, line: string, socket?: OsSocket): void {
    this.addon.sendSocket(channel, line, socket ?? -1)
  }

  requestSocket(channel: number, line: string, timeoutMs: number): { line: string; socket?: OsSocket } {
    const answer = this.addon.requestSocket(channel, line, timeoutMs)
    return { line: answer.line, ...(answer.fd >= 0 && { socket: answer.fd }) }
  }
}

import { closeSync } from 'node:fs'
import { StringDecoder } from 'node:string_decoder'
import { HandoverError, systemError } from '../core/errors.js'
import type { Transport } from '../core/platform.js'
import { posixAddon } from './addon.js'
import type { NativeChannel } from './posix-addon.js'

/**
 * A connected pair of unix stream sockets, close-on-exec and non-blocking:
 * one end for a PosixChannel here, the other for the next process (through
 * spawn's stdio array, which clears close-on-exec in the child only).
 */
export function socketPair(): [number, number] {
  try {
    return posixAddon().socketPair()
  } catch (err) {
    throw systemError(err, 'socketpair')
  }
}

type DataListener = (chunk: string, sockets: number[]) => void

/**
 * The POSIX Transport: lines (UTF-8) and fds over a unix stream socket,
 * read and written on Node's loop by native/posix/channel.cc.
 *
 * - It owns `fd` once constructed: destroy() closes it. The fd must not also
 *   be a net.Socket in this process (libuv watches an fd once).
 * - Received fds are close-on-exec and belong to the data listeners. Chunks
 *   read before the first onData() listener are kept for it; destroy()
 *   closes the fds of chunks nobody took.
 * - A write whose fd must wait for room in the kernel's buffer holds its own
 *   duplicate of the fd meanwhile, so the caller may close its copy at once.
 */
export class PosixChannel implements Transport {
  readonly carriesSockets = true
  private readonly native: NativeChannel
  private readonly decoder = new StringDecoder('utf8')
  private readonly dataListeners: DataListener[] = []
  private readonly closeListeners: Array<() => void> = []
  /** Chunks read while nobody listened. */
  private held: Array<{ chunk: string; sockets: number[] }> | undefined = []
  /** Resolvers of queued writes, oldest first. */
  private readonly queued_: Array<() => void> = []
  private ended = false
  private why?: HandoverError

  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
      throw new HandoverError('ERR_INVALID_ARGUMENT', `a channel needs an fd, not ${String(fd)}`)
    }
    const { Channel } = posixAddon()
    try {
      this.native = new Channel(
        fd,
        (chunk, fds) => this.received(chunk, fds),
        (count) => this.written(count),
        (errno) => this.finish(errno),
      )
    } catch (err) {
      throw channelError(err, fd)
    }
  }

  get closed(): boolean {
    return this.ended || this.native.closed
  }

  /** Writes waiting for room in the kernel's buffer (each holding its fd's duplicate): for a caller that paces itself. */
  get queued(): number {
    return this.queued_.length
  }

  /** Why the channel ended, if an error ended it (an EOF or destroy() leaves it undefined). */
  get error(): HandoverError | undefined {
    return this.why
  }

  write(data: string, socket?: number): Promise<void> {
    if (typeof data !== 'string') return Promise.reject(new HandoverError('ERR_INVALID_ARGUMENT', 'write() needs a string'))
    if (socket !== undefined && (!Number.isInteger(socket) || socket < 0 || socket > 0x7fffffff)) {
      return Promise.reject(new HandoverError('ERR_INVALID_ARGUMENT', `write() needs an fd, not ${String(socket)}`))
    }
    if (socket !== undefined && data.length === 0) {
      return Promise.reject(new HandoverError('ERR_INVALID_ARGUMENT', 'an fd rides on a byte: write() needs data with it'))
    }
    if (this.closed) return Promise.resolve()
    let status: 0 | 1
    try {
      status = this.native.write(Buffer.from(data, 'utf8'), socket ?? -1)
    } catch (err) {
      // EBADF: `socket` is not open; EMFILE: no fd left to hold a copy while queued.
      return Promise.reject(systemError(err, `channel write of fd ${socket}`))
    }
    if (status === 1) return new Promise((resolve) => this.queued_.push(resolve))
    // The send found the peer gone: the native side closed without a callback.
    if (this.native.closed && !this.ended) process.nextTick(() => this.finish(this.native.errno))
    return Promise.resolve()
  }

  onData(listener: DataListener): void {
    this.dataListeners.push(listener)
    const held = this.held
    if (held === undefined) return
    this.held = undefined
    // Not before the caller's next line, as with an event.
    if (held.length > 0) process.nextTick(() => held.forEach(({ chunk, sockets }) => this.emit(chunk, sockets)))
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener)
  }

  ref(): void {
    this.native.ref()
  }

  unref(): void {
    this.native.unref()
  }

  /** Closes the socket; pending writes resolve, close listeners run (on the next tick). */
  destroy(): void {
    if (this.closed) return
    this.native.close()
    process.nextTick(() => this.finish(0))
  }

  private received(chunk: Buffer, fds: number[]): void {
    const text = this.decoder.write(chunk)
    if (this.held !== undefined) {
      this.held.push({ chunk: text, sockets: fds })
      return
    }
    this.emit(text, fds)
  }

  private emit(chunk: string, sockets: number[]): void {
    for (const listener of this.dataListeners) listener(chunk, sockets)
  }

  private written(count: number): void {
    for (const resolve of this.queued_.splice(0, count)) resolve()
  }

  private finish(errno: number): void {
    if (this.ended) return
    this.ended = true
    if (errno !== 0) this.why = systemError({ errno, syscall: 'channel' }, 'between generations')
    // The peer has gone: nothing queued will reach it.
    for (const resolve of this.queued_.splice(0)) resolve()
    for (const { sockets } of this.held ?? []) sockets.forEach(closeQuietly)
    this.held = undefined
    for (const listener of this.closeListeners) listener()
  }
}

/** Why an fd cannot be a channel, in words systemError's table does not have. */
const REFUSALS: Record<string, string> = {
  EBADF: 'is not open',
  ENOTSOCK: 'is not a socket',
  EPROTOTYPE: 'is not a unix stream socket',
  EEXIST: "is already watched by this process's loop (a net.Socket, or another channel)",
}

function channelError(err: unknown, fd: number): HandoverError {
  const typed = systemError(err, `channel fd ${fd}`)
  const reason = REFUSALS[typed.code]
  if (reason === undefined || typed.errno === undefined) return typed
  return new HandoverError(typed.code, `fd ${fd} ${reason}: it cannot be a channel`, { errno: typed.errno, syscall: typed.syscall, address: `channel fd ${fd}` })
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // Already closed by its taker.
  }
}

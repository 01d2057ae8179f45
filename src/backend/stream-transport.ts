import type { Socket } from 'node:net'
import { HandoverError } from '../core/errors.js'
import type { OsSocket, Transport } from '../core/platform.js'

/**
 * A Transport over a Node stream socket (on Windows, the named pipe spawn
 * makes). Node reads and writes it, so it carries no sockets: a peer that
 * passes connections needs a PosixChannel.
 */
export class StreamTransport implements Transport {
  readonly carriesSockets = false
  private closedFlag = false
  private readonly closeListeners: Array<() => void> = []

  constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8')
    const closed = (): void => this.markClosed()
    // An error is the peer going away as far as the channel is concerned.
    socket.on('error', closed)
    socket.on('close', closed)
    socket.on('end', closed)
  }

  get closed(): boolean {
    return this.closedFlag
  }

  write(data: string, socket?: OsSocket): Promise<void> {
    if (socket !== undefined) return Promise.reject(new HandoverError('ERR_UNSUPPORTED', 'this channel carries no sockets'))
    return new Promise((resolve) => {
      if (this.closedFlag || this.socket.destroyed) return resolve()
      // A peer that has gone away is reported through onClose.
      this.socket.write(data, () => resolve())
    })
  }

  onData(listener: (chunk: string, sockets: OsSocket[]) => void): void {
    this.socket.on('data', (chunk: string) => listener(chunk, []))
  }

  onClose(listener: () => void): void {
    if (this.closedFlag) queueMicrotask(listener)
    else this.closeListeners.push(listener)
  }

  ref(): void {
    this.socket.ref()
  }

  unref(): void {
    this.socket.unref()
  }

  destroy(): void {
    this.socket.destroy()
    this.markClosed()
  }

  private markClosed(): void {
    if (this.closedFlag) return
    this.closedFlag = true
    for (const listener of this.closeListeners.splice(0)) listener()
  }
}

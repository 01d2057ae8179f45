import type { Socket } from 'node:net'
import type { Transport } from '../core/platform.js'

/** A Transport over a Node stream socket: a spawn 'pipe' (a socketpair on POSIX, a named pipe on Windows). */
export class StreamTransport implements Transport {
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

  write(data: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.closedFlag || this.socket.destroyed) return resolve()
      // A peer that has gone away is reported through onClose.
      this.socket.write(data, () => resolve())
    })
  }

  onData(listener: (chunk: string) => void): void {
    this.socket.on('data', listener)
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

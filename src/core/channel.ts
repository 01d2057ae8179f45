import { EventEmitter } from 'node:events'
import { closeSync } from 'node:fs'
import { HandoverError } from './errors.js'
import type { OsSocket, Transport } from './platform.js'
import { MAX_LINE, validateMessage, type Message } from './protocol.js'

/**
 * The channel between a process and one it started (the next generation, or
 * a worker of `handover run`): JSON lines over a Transport. Emits 'message'
 * (validated; with the socket it carried, for a line that says `"fd":true`),
 * 'error' (ERR_PROTOCOL, after which nothing more is emitted) and 'close'
 * (the other side is gone), once.
 *
 * Sockets and lines pair up in order: the transport delivers a socket no
 * later than the last byte of the line it was sent with, so the oldest
 * socket not yet taken belongs to the next line that says it carries one.
 * A socket that no line claims is closed.
 *
 * Not to be confused with the control socket (service/control-socket.ts),
 * which answers the `handover` command.
 */
export class Channel extends EventEmitter {
  private buffer = ''
  private failed = false
  /** Sockets received and not yet paired with their line. */
  private readonly sockets: OsSocket[] = []
  /** Whether the channel itself keeps the loop alive (transports start so), and how many waits do. */
  private referenced = true
  private holds = 0

  /** maxLine: the longest line accepted; a child reading the hello passes MAX_HELLO_LINE. */
  constructor(readonly transport: Transport, private maxLine = MAX_LINE) {
    super()
    transport.onData((chunk, sockets) => this.onData(chunk, sockets))
    transport.onClose(() => {
      this.closeUnclaimed()
      this.emit('close')
    })
  }

  /** True if a line may carry a socket (the transport can pass one). */
  get carriesSockets(): boolean {
    return this.transport.carriesSockets
  }

  get closed(): boolean {
    return this.transport.closed
  }

  /** Sends one line; with `socket`, the message must say `"fd": true`. The caller keeps its own copy of the socket. */
  send(message: Message, socket?: OsSocket): Promise<void> {
    return this.transport.write(`${JSON.stringify(message)}\n`, socket)
  }

  /** Keeps the channel open without keeping the event loop alive (but while something holds it). */
  unref(): void {
    this.referenced = false
    this.updateRef()
  }

  ref(): void {
    this.referenced = true
    this.updateRef()
  }

  /**
   * Keeps the event loop alive, even if the channel is unreferenced, until
   * the returned function is called: for a wait on the other side's answer.
   */
  hold(): () => void {
    this.holds++
    this.updateRef()
    let released = false
    return () => {
      if (released) return
      released = true
      this.holds--
      this.updateRef()
    }
  }

  private updateRef(): void {
    if (this.referenced || this.holds > 0) this.transport.ref()
    else this.transport.unref()
  }

  destroy(): void {
    this.transport.destroy()
    this.closeUnclaimed()
  }

  /** Lowers the line limit once the one long line (the hello) has been read. */
  limitLines(maxLine: number): void {
    this.maxLine = maxLine
  }

  private onData(chunk: string, sockets: OsSocket[]): void {
    this.sockets.push(...sockets)
    if (this.failed) return this.closeUnclaimed()
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
          : new HandoverError('ERR_PROTOCOL', `channel message is not JSON: ${JSON.stringify(line.slice(0, 80))}`)
        return this.fail(error)
      }
      if ((message as { fd?: unknown }).fd === true) {
        const socket = this.sockets.shift()
        if (socket === undefined) return this.fail(new HandoverError('ERR_PROTOCOL', `a ${message.type} message said it carried a socket, and none came`))
        this.emit('message', message, socket)
      } else {
        this.emit('message', message)
      }
      if (this.failed) return
    }
    if (this.buffer.length > this.maxLine) this.fail(new HandoverError('ERR_PROTOCOL', `channel message longer than ${this.maxLine} characters`))
  }

  private fail(error: HandoverError): void {
    this.failed = true
    this.buffer = ''
    this.closeUnclaimed()
    this.emit('error', error)
  }

  private closeUnclaimed(): void {
    for (const socket of this.sockets.splice(0)) {
      try {
        closeSync(socket)
      } catch {
        // Already closed.
      }
    }
  }
}

import { EventEmitter } from 'node:events'
import { HandoverError } from './errors.js'
import type { Transport } from './platform.js'
import { MAX_LINE, validateMessage, type Message } from './protocol.js'

/**
 * The channel between a process and one it started (the next generation, or
 * a worker of `handover run`): JSON lines over a Transport. Emits 'message'
 * (validated), 'error' (ERR_PROTOCOL, after which nothing more is emitted)
 * and 'close' (the other side is gone), once.
 *
 * Not to be confused with the control socket (service/control-socket.ts),
 * which answers the `handover` command.
 */
export class Channel extends EventEmitter {
  private buffer = ''
  private failed = false

  /** maxLine: the longest line accepted; a child reading the hello passes MAX_HELLO_LINE. */
  constructor(readonly transport: Transport, private maxLine = MAX_LINE) {
    super()
    transport.onData((chunk) => this.onData(chunk))
    transport.onClose(() => this.emit('close'))
  }

  get closed(): boolean {
    return this.transport.closed
  }

  send(message: Message): Promise<void> {
    return this.transport.write(`${JSON.stringify(message)}\n`)
  }

  /** Keeps the channel open without keeping the event loop alive. */
  unref(): void {
    this.transport.unref()
  }

  ref(): void {
    this.transport.ref()
  }

  destroy(): void {
    this.transport.destroy()
  }

  /** Lowers the line limit once the one long line (the hello) has been read. */
  limitLines(maxLine: number): void {
    this.maxLine = maxLine
  }

  private onData(chunk: string): void {
    if (this.failed) return
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
      this.emit('message', message)
      if (this.failed) return
    }
    if (this.buffer.length > this.maxLine) this.fail(new HandoverError('ERR_PROTOCOL', `channel message longer than ${this.maxLine} characters`))
  }

  private fail(error: HandoverError): void {
    this.failed = true
    this.buffer = ''
    this.emit('error', error)
  }
}

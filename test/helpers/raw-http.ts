import net from 'node:net'

/**
 * One keep-alive HTTP/1 connection on a raw socket, so a test can write a
 * request in pieces at chosen moments and see exactly what comes back on
 * that connection (an http.Agent would hide a reconnect).
 */
export class RawConnection {
  /** The server closed the connection (or it failed). */
  closed = false
  private buffer = ''
  private waiting?: { resolve: (answer: { status: number; body: string; close: boolean }) => void; reject: (err: Error) => void }

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => this.read(chunk))
    socket.on('error', (err) => this.fail(err))
    socket.on('close', () => {
      this.closed = true
      this.fail(Object.assign(new Error('closed by the server'), { code: 'ECLOSED' }))
    })
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' }, () => {
        socket.removeListener('error', reject)
        resolve(new RawConnection(socket))
      })
      socket.once('error', reject)
    })
  }

  get localPort(): number {
    return this.socket.localPort as number
  }

  /** Writes `text` now; resolves once it is in the kernel (written). */
  write(text: string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(text, (err) => (err ? reject(err) : resolve())))
  }

  /** The next whole response on this connection. */
  response(timeoutMs = 10_000): Promise<{ status: number; body: string; close: boolean }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(Object.assign(new Error('no response'), { code: 'ETIMEDOUT' })), timeoutMs)
      this.waiting = {
        resolve: (answer) => (clearTimeout(timer), resolve(answer)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      }
      this.read('')
    })
  }

  /** Bytes that arrived and no response() took: a response nobody asked for, say. */
  get unread(): string {
    return this.buffer
  }

  /** A whole GET on this connection; resolves with the answering pid. */
  async get(path = '/'): Promise<number> {
    const answer = this.response()
    await this.write(path === '/' ? REQUEST : REQUEST.replace('GET / ', `GET ${path} `))
    const { status, body } = await answer
    if (status !== 200) throw new Error(`status ${status}`)
    return Number(body)
  }

  private read(chunk: string): void {
    this.buffer += chunk
    if (!this.waiting) return
    const end = this.buffer.indexOf('\r\n\r\n')
    if (end === -1) return
    const head = this.buffer.slice(0, end)
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN)
    if (this.buffer.length < end + 4 + length) return
    const body = this.buffer.slice(end + 4, end + 4 + length)
    this.buffer = this.buffer.slice(end + 4 + length)
    const waiting = this.waiting
    this.waiting = undefined
    waiting.resolve({ status: Number(head.split(' ')[1]), body, close: /\r\nconnection: *close/i.test(head) })
  }

  private fail(err: Error): void {
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.reject(err)
  }

  destroy(): void {
    this.socket.destroy()
  }
}

export const REQUEST = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'

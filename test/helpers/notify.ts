import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

const RECEIVER = fileURLToPath(new URL('../fixtures/notify-receiver.py', import.meta.url))

export interface Notification {
  /** The sender's pid, from the kernel's SCM_CREDENTIALS. */
  pid: number
  message: string
  /** CLOCK_MONOTONIC at receipt, in µs. */
  receivedUsec: number
}

/** A real unix datagram socket standing in for systemd's NOTIFY_SOCKET (a python3 helper). */
export class NotifyReceiver {
  readonly messages: Notification[] = []
  private readonly stderr: string[] = []
  private waiters: Array<() => void> = []

  private constructor(private readonly child: ChildProcess) {}

  static async start(address: string): Promise<NotifyReceiver> {
    const child = spawn('python3', [RECEIVER, address], { stdio: ['ignore', 'pipe', 'pipe'] })
    const receiver = new NotifyReceiver(child)
    createInterface({ input: child.stderr! }).on('line', (line) => receiver.stderr.push(line))
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', (code) => reject(new Error(`notify receiver exited with ${code}: ${receiver.stderr.join('\n')}`)))
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const value = JSON.parse(line) as Notification | { listening: string }
        if ('listening' in value) return resolve()
        receiver.messages.push(value)
        for (const wake of receiver.waiters.splice(0)) wake()
      })
    })
    return receiver
  }

  /** Resolves once `count` messages have arrived. */
  async waitForCount(count: number, timeoutMs = 20_000): Promise<Notification[]> {
    const deadline = Date.now() + timeoutMs
    while (this.messages.length < count) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`notify: ${this.messages.length} of ${count} messages within ${timeoutMs} ms: ${JSON.stringify(this.messages)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.messages.slice(0, count)
  }

  stop(): void {
    this.child.kill('SIGKILL')
  }
}

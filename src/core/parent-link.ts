import type { PlatformBackend } from '../backend/types.js'
import { raceDeadline, type Deadline } from './deadline.js'
import { HandoverError } from './errors.js'
import {
  chooseVersion, ControlChannel, MAX_HELLO_LINE, MAX_LINE, type HelloMessage, type Message, type TransferEntry, type UpgradeResultMessage,
} from './protocol.js'

/** The link a new generation keeps to the process that started it. */
export class ParentLink {
  private exitedFlag = false
  private waiters = 0
  /** Resolves when the parent has exited (EOF on the control channel). */
  readonly exited: Promise<void>
  /** Resolves when the parent says it handed over (it has sent MAINPID=), or has exited. */
  readonly handedOver: Promise<void>
  /** Under `handover run`: resolves when the supervisor says drain, or has gone. */
  readonly drainRequested: Promise<void>
  private upgradeWaiter?: (result: UpgradeResultMessage) => void

  private constructor(
    private readonly channel: ControlChannel,
    readonly parentPid: number,
    readonly sockets: TransferEntry[],
    /** The protocol version chosen from the parent's hello. */
    readonly version: number,
  ) {
    this.exited = new Promise((resolve) => {
      const done = (): void => {
        this.exitedFlag = true
        resolve()
      }
      if (channel.closed) done()
      else channel.once('close', done)
    })
    this.handedOver = new Promise((resolve) => {
      channel.on('message', (m: Message) => m.type === 'handed-over' && resolve())
      void this.exited.then(resolve)
    })
    this.drainRequested = new Promise((resolve) => {
      channel.on('message', (m: Message) => m.type === 'drain' && resolve())
      void this.exited.then(resolve)
    })
    channel.on('message', (m: Message) => {
      if (m.type !== 'upgrade-result') return
      const waiter = this.upgradeWaiter
      this.upgradeWaiter = undefined
      waiter?.(m)
    })
    void this.exited.then(() => {
      const waiter = this.upgradeWaiter
      this.upgradeWaiter = undefined
      waiter?.({ type: 'upgrade-result', ok: false, code: 'ERR_STOPPED', message: 'the supervisor has gone' })
    })
    // Anything else the parent says after hello is a protocol error we can only ignore.
    channel.on('error', () => {})
    channel.unref()
  }

  /** Waiters keep the process alive; otherwise the channel must not. */
  ref(): void {
    this.waiters++
    this.channel.ref()
  }

  unref(): void {
    if (--this.waiters === 0) this.channel.unref()
  }

  get hasExited(): boolean {
    return this.exitedFlag
  }

  /** Resolves once the parent has exited, keeping this process alive meanwhile; rejects as the deadline says. */
  waitForExit(deadline: Deadline): Promise<void> {
    this.ref()
    return raceDeadline(this.exited, deadline).finally(() => this.unref())
  }

  /**
   * Opens the inherited control channel and waits for the parent's hello.
   * Everything that can be wrong with it is ERR_BAD_INHERITANCE, except a
   * parent with no protocol version in common: ERR_INCOMPATIBLE, which is
   * also sent to the parent (a 'refused' line) so that its upgrade() says why.
   */
  static async connect(backend: PlatformBackend, controlFd: number, timeout: number): Promise<ParentLink> {
    const channel = new ControlChannel(backend.openControl(controlFd), MAX_HELLO_LINE)
    let timer: NodeJS.Timeout | undefined
    try {
      const hello = await new Promise<HelloMessage>((resolve, reject) => {
        const bad = (why: string, cause?: unknown): void =>
          reject(new HandoverError('ERR_BAD_INHERITANCE', `bad control channel from the parent: ${why}`, { cause }))
        channel.on('message', (m: Message) => (m.type === 'hello' ? resolve(m) : bad(`expected hello, got ${m.type}`)))
        channel.on('error', (err: Error) => bad(err.message, err))
        channel.once('close', () => bad('it closed before the parent said hello'))
        timer = setTimeout(() => bad(`no hello within ${timeout} ms`), timeout)
      })
      channel.removeAllListeners()
      channel.limitLines(MAX_LINE)
      let version: number
      try {
        version = chooseVersion(hello)
      } catch (err) {
        const { code, message } = err as HandoverError
        // Bounded, so that a refusal never hangs create(); a parent gone meanwhile is fine.
        let bound: NodeJS.Timeout | undefined
        await Promise.race([channel.send({ type: 'refused', code, message }), new Promise((r) => (bound = setTimeout(r, 1000)))])
        clearTimeout(bound)
        throw err
      }
      return new ParentLink(channel, hello.parentPid, hello.sockets, version)
    } catch (err) {
      channel.removeAllListeners()
      channel.destroy()
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Under `handover run`: asks the supervisor for a new generation and
   * waits for its answer, keeping the process alive meanwhile. One at a
   * time; the supervisor's own checks (ERR_UPGRADE_IN_PROGRESS...) apply.
   */
  async requestUpgrade(): Promise<UpgradeResultMessage> {
    if (this.upgradeWaiter) return { type: 'upgrade-result', ok: false, code: 'ERR_UPGRADE_IN_PROGRESS', message: 'this worker already asked for an upgrade' }
    if (this.exitedFlag) return { type: 'upgrade-result', ok: false, code: 'ERR_STOPPED', message: 'the supervisor has gone' }
    const answer = new Promise<UpgradeResultMessage>((resolve) => (this.upgradeWaiter = resolve))
    this.ref()
    try {
      await this.channel.send({ type: 'upgrade-request' })
      return await answer
    } finally {
      this.unref()
    }
  }

  /** Tells the parent to hand over; a parent that has already gone is fine. */
  sendReady(): Promise<void> {
    return this.channel.send({ type: 'ready', pid: process.pid, version: this.version })
  }
}

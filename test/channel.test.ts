// The native Channel (native/posix/channel.cc) through PosixChannel: lines
// and fds in order under a full kernel buffer, fds nobody took, EOF, the
// loop reference, bad input.
import { spawn } from 'node:child_process'
import { closeSync, fstatSync, openSync, readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { PosixChannel, socketPair } from '../src/backend/posix-channel.js'
import { isHandoverError } from '../src/core/errors.js'
import { waitUntil } from './helpers/processes.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const O_NONBLOCK = 0o4000
const O_CLOEXEC = 0o2000000

/** The flags of one of this process's fds, from /proc. */
function flags(fd: number): number {
  return parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1], 8)
}

const fdCount = (): number => readdirSync('/proc/self/fd').length

/** Everything a channel reads, as lines, each with the fd its line carried. */
function collect(channel: PosixChannel): Array<{ line: string; fd?: number }> {
  const got: Array<{ line: string; fd?: number }> = []
  let text = ''
  const fds: number[] = []
  channel.onData((chunk, sockets) => {
    text += chunk
    fds.push(...sockets)
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n')) {
      const line = text.slice(0, i)
      text = text.slice(i + 1)
      got.push({ line, ...(line.endsWith('+fd') && { fd: fds.shift() }) })
    }
  })
  return got
}

/** Resolves when `channel` closes. */
const closing = (channel: PosixChannel): Promise<void> => new Promise((resolve) => channel.onClose(resolve))

const cleanup: Array<() => void> = []
afterEach(() => {
  for (const step of cleanup.splice(0).reverse()) step()
})

/** A channel on each end of a fresh pair, destroyed after the test. */
function pair(): [PosixChannel, PosixChannel] {
  const [a, b] = socketPair()
  const channels: [PosixChannel, PosixChannel] = [new PosixChannel(a), new PosixChannel(b)]
  cleanup.push(() => channels.forEach((c) => c.destroy()))
  return channels
}

describe('socketPair', () => {
  it('makes close-on-exec, non-blocking unix stream sockets', () => {
    const fds = socketPair()
    for (const fd of fds) {
      expect(flags(fd) & O_CLOEXEC).toBe(O_CLOEXEC)
      expect(flags(fd) & O_NONBLOCK).toBe(O_NONBLOCK)
      expect(fstatSync(fd).isSocket()).toBe(true)
      closeSync(fd)
    }
  })
})

describe('PosixChannel', () => {
  it('keeps 10,000 lines and their fds in order through a full kernel buffer', async () => {
    const [sender, receiver] = pair()
    // 97 distinct sockets, told apart by inode: line i carries source i % 97.
    const sources = Array.from({ length: 97 }, () => socketPair())
    cleanup.push(() => sources.flat().forEach((fd) => closeSync(fd)))
    const inodes = sources.map(([fd]) => fstatSync(fd).ino)
    const got = collect(receiver)
    const before = fdCount()
    const writes: Array<Promise<void>> = []
    for (let i = 0; i < 10_000; i++) {
      // Multi-byte text: a character split between two reads stays whole.
      writes.push(sender.write(`${i} héllo wörld ${'x'.repeat(i % 50)} +fd\n`, sources[i % 97][0]))
    }
    // The kernel holds a few hundred such messages; the rest wait, in order.
    expect(sender.queued).toBeGreaterThan(1000)
    await Promise.all(writes)
    await waitUntil(() => got.length === 10_000, 30_000, '10,000 lines')
    expect(sender.queued).toBe(0)
    const cloexec = got.every(({ fd }) => fd !== undefined && (flags(fd) & O_CLOEXEC) === O_CLOEXEC)
    const mismatched = got.filter(({ line, fd }, i) => line !== `${i} héllo wörld ${'x'.repeat(i % 50)} +fd` || fstatSync(fd!).ino !== inodes[i % 97])
    for (const { fd } of got) closeSync(fd!)
    expect(mismatched).toEqual([])
    expect(cloexec).toBe(true)
    // Every duplicate the queue held is closed.
    expect(fdCount()).toBe(before)
  })

  it('closes fds that were sent but never delivered', async () => {
    const baseline = fdCount()
    const [a, b] = socketPair()
    const sender = new PosixChannel(a)
    const receiver = new PosixChannel(b)
    // Each fd sent is one end of a pair whose other end watches for EOF.
    const watched = Array.from({ length: 50 }, () => socketPair())
    const eofs = watched.map(([mine]) => {
      const watcher = new PosixChannel(mine)
      return closing(watcher).then(() => watcher.error)
    })
    await Promise.all(watched.map(([, theirs]) => sender.write('one +fd\n', theirs)))
    for (const [, theirs] of watched) closeSync(theirs)
    // In the kernel's buffer now, nowhere else: closing the receiver unread
    // makes the kernel close them, and each watcher sees its peer go.
    receiver.destroy()
    expect(await Promise.all(eofs)).toEqual(watched.map(() => undefined))

    // Read but never taken (no onData listener): destroy() closes them.
    const [c, d] = socketPair()
    const quiet = new PosixChannel(d)
    const more = Array.from({ length: 50 }, () => socketPair())
    const moreEofs = more.map(([mine]) => closing(new PosixChannel(mine)))
    const sender2 = new PosixChannel(c)
    await Promise.all(more.map(([, theirs]) => sender2.write('one +fd\n', theirs)))
    for (const [, theirs] of more) closeSync(theirs)
    const held = fdCount()
    await waitUntil(() => fdCount() === held + 50, 10_000, 'the 50 fds to be read')
    quiet.destroy()
    await Promise.all(moreEofs)
    sender.destroy()
    sender2.destroy()
    await waitUntil(() => fdCount() === baseline, 10_000, `the fd count back at ${baseline}`)
  })

  it('reports EOF once, resolves queued writes when the peer goes, and then writes nothing', async () => {
    const [sender, receiver] = pair()
    let closes = 0
    receiver.onClose(() => closes++)
    sender.destroy()
    await waitUntil(() => closes === 1, 10_000, 'EOF')
    expect(receiver.closed).toBe(true)
    expect(receiver.error).toBeUndefined()
    await receiver.write('after the end\n')
    receiver.destroy()
    expect(closes).toBe(1)

    // A peer that never reads, then goes: every write waiting for room resolves.
    const [a, b] = socketPair()
    let peerOpen = true
    cleanup.push(() => peerOpen && closeSync(b))
    const writer = new PosixChannel(a)
    cleanup.push(() => writer.destroy())
    const writes = Array.from({ length: 2000 }, (_, i) => writer.write(`${i} ${'y'.repeat(1000)}\n`))
    expect(writer.queued).toBeGreaterThan(0)
    const closed = closing(writer)
    closeSync(b)
    peerOpen = false
    await Promise.all(writes)
    await closed
    expect(writer.closed).toBe(true)
    expect(['EPIPE', 'ECONNRESET']).toContain(writer.error?.code)
  })

  it('delivers what a peer sent before it closed with bytes of ours unread', async () => {
    const [a, b] = socketPair()
    const old = new PosixChannel(a)
    const next = new PosixChannel(b)
    cleanup.push(() => next.destroy())
    const got = collect(next)
    const sources = Array.from({ length: 20 }, () => socketPair())
    cleanup.push(() => sources.flat().forEach((fd) => closeSync(fd)))
    // One synchronous step: "old" never reads the ack, sends 20 fds and goes.
    // Its unread ack makes the kernel reset "next" (ECONNRESET, POLLERR),
    // and the lines and fds before that must still arrive.
    void next.write('ack\n')
    for (const [fd] of sources) void old.write('conn +fd\n', fd)
    old.destroy()
    await closing(next)
    expect(got.map(({ line }) => line)).toEqual(sources.map(() => 'conn +fd'))
    expect(got.map(({ fd }) => fstatSync(fd!).ino)).toEqual(sources.map(([fd]) => fstatSync(fd).ino))
    for (const { fd } of got) closeSync(fd!)
    expect(next.error?.code).toBe('ECONNRESET')
  })

  it('keeps the process alive while ref()ed, not once unref()ed', async () => {
    const addon = join(ROOT, 'build/Release/handover.node')
    // A child on the far end of a pair: it exits on its own only if its
    // channel does not hold the loop.
    const run = (unref: boolean) => {
      const [mine, theirs] = socketPair()
      const script = `
        const a = require(${JSON.stringify(addon)})
        const c = new a.Channel(3, () => {}, () => {}, () => console.log('eof'))
        ${unref ? 'c.unref()' : ''}
        console.log('ready')`
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit', theirs] })
      closeSync(theirs)
      let out = ''
      child.stdout!.on('data', (chunk) => (out += chunk))
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
      return { mine, exited, out: () => out }
    }
    const unrefed = run(true)
    expect(await unrefed.exited).toBe(0)
    expect(unrefed.out()).toBe('ready\n')
    closeSync(unrefed.mine)

    const refed = run(false)
    await waitUntil(() => refed.out() === 'ready\n', 10_000, 'the child to start')
    closeSync(refed.mine)
    expect(await refed.exited).toBe(0)
    expect(refed.out()).toBe('ready\neof\n')
  })

  it('refuses bad input with typed errors and leaves the fd to the caller', async () => {
    expect(() => new PosixChannel(-1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    const file = openSync(fileURLToPath(import.meta.url), 'r')
    cleanup.push(() => closeSync(file))
    expect(() => new PosixChannel(file)).toThrow(expect.objectContaining({ code: 'ENOTSOCK' }))
    // A TCP listener is a socket, but not a unix stream one.
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    cleanup.push(() => server.close())
    const tcp = (server as unknown as { _handle: { fd: number } })._handle.fd
    expect(() => new PosixChannel(tcp)).toThrow(expect.objectContaining({ code: 'EPROTOTYPE' }))
    // libuv watches an fd once: a second channel on it is refused.
    const [sender, receiver] = pair()
    const [x, y] = socketPair()
    cleanup.push(() => closeSync(y))
    const first = new PosixChannel(x)
    cleanup.push(() => first.destroy())
    let second: unknown
    try {
      new PosixChannel(x)
    } catch (err) {
      second = err
    }
    expect(isHandoverError(second, 'EEXIST')).toBe(true)
    // Still open, and still first's: the failed constructor did not take it.
    expect(first.closed).toBe(false)
    expect(fstatSync(x).isSocket()).toBe(true)

    await expect(sender.write(42 as unknown as string)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(sender.write('x\n', -3)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(sender.write('', 0)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    const closedFd = openSync('/dev/null', 'r')
    closeSync(closedFd)
    await expect(sender.write('x +fd\n', closedFd)).rejects.toMatchObject({ code: 'EBADF' })
    // The channel outlives a refused write.
    const got = collect(receiver)
    await sender.write('still here\n')
    await waitUntil(() => got.length === 1, 10_000, 'the line')
    expect(got).toEqual([{ line: 'still here' }])
  })
})

// Worker output relayed line by line with a prefix, and the supervisor's
// own events as text or JSON lines (src/supervisor/log-relay.ts): the pure
// parts, then real children writing interleaved partial lines into pipes.
import { spawn } from 'node:child_process'
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { eventLogger, formatJsonEvent, formatTextEvent, LineSplitter, LogRelay, utf8Cut, workerPrefix } from '../src/supervisor/log-relay.js'

const text = (bufs: Buffer[]): string[] => bufs.map((b) => b.toString())

describe('splitting into lines', () => {
  it('joins partial writes, splits several lines in one chunk, keeps empty lines and \\r, and flushes the last line at EOF', () => {
    const s = new LineSplitter()
    expect(text(s.push(Buffer.from('hel')))).toEqual([])
    expect(text(s.push(Buffer.from('lo\nwor')))).toEqual(['hello'])
    expect(text(s.push(Buffer.from('ld\r\n\n\nlast')))).toEqual(['world\r', '', ''])
    expect(text(s.end())).toEqual(['last'])
    expect(s.end()).toEqual([])
  })

  it('a line longer than the bound is written in pieces of the bound; one of exactly the bound stays whole', () => {
    const s = new LineSplitter(10)
    expect(text(s.push(Buffer.from('0123456789')))).toEqual([])
    expect(text(s.push(Buffer.from('\n')))).toEqual(['0123456789'])
    expect(text(s.push(Buffer.from('abcdefghijklmnopqrstuvwxy')))).toEqual(['abcdefghij', 'klmnopqrst'])
    expect(text(s.push(Buffer.from('z\n')))).toEqual(['uvwxyz'])
  })

  it('never cuts a UTF-8 character in two', () => {
    // "é" is 2 bytes, "😀" 4: a cut at 10 bytes falls inside one.
    const line = `aaaaaaaaa${'😀'.repeat(5)}é`
    const s = new LineSplitter(10)
    const pieces = [...s.push(Buffer.from(line)), ...s.end()]
    expect(pieces.every((p) => p.length <= 10)).toBe(true)
    for (const p of pieces) expect(Buffer.from(p.toString()).equals(p)).toBe(true)
    expect(pieces.map((p) => p.toString()).join('')).toBe(line)
    expect(utf8Cut(Buffer.from('ab😀'), 3)).toBe(2)
    expect(utf8Cut(Buffer.from([0x61, 0x80, 0x80, 0x80, 0x80, 0x80]), 5)).toBe(5)
  })

  it('the prefix names the generation, the slot (from 1) and the pid', () => {
    expect(workerPrefix({ generation: 3, slot: 0, pid: 4211 })).toBe('[g3 w1 4211] ')
  })
})

describe('the supervisor\'s own events', () => {
  const at = new Date('2026-12-07T12:00:00.000Z')

  it('JSON lines: time, level, event and message first, then the fields; reserved names and undefined are dropped', () => {
    const line = formatJsonEvent({ level: 'warn', event: 'worker-exit', message: 'worker 4101 exited with code 1,\nrestarting', fields: { pid: 4101, code: 1, time: 'spoofed', signal: undefined, big: 10n } }, at)
    expect(line.endsWith('\n')).toBe(true)
    expect(line.slice(0, -1)).not.toContain('\n')
    expect(JSON.parse(line)).toEqual({ time: '2026-12-07T12:00:00.000Z', level: 'warn', event: 'worker-exit', message: 'worker 4101 exited with code 1,\nrestarting', pid: 4101, code: 1, big: '10' })
    expect(Object.keys(JSON.parse(line)).slice(0, 4)).toEqual(['time', 'level', 'event', 'message'])
  })

  it('errors and cycles in fields do not break the line', () => {
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    const err = Object.assign(new Error('boom'), { code: 'ERR_CHILD_EXITED' })
    expect(JSON.parse(formatJsonEvent({ level: 'error', event: 'upgrade-failed', message: 'x', fields: { err, cyclic } }, at))).toMatchObject({
      err: { name: 'Error', message: 'boom', code: 'ERR_CHILD_EXITED' },
      cyclic: { a: 1, self: '[circular]' },
    })
  })

  it('text: the "handover: " line as before, on one line', () => {
    expect(formatTextEvent({ level: 'info', event: 'generation-ready', message: 'generation 2 ready (2 workers) in 212 ms' })).toBe('handover: generation 2 ready (2 workers) in 212 ms\n')
    const lines: string[] = []
    eventLogger('json', (l) => lines.push(l), () => at)({ level: 'info', event: 'stop', message: 'stopped' })
    eventLogger('text', (l) => lines.push(l))({ level: 'info', event: 'stop', message: 'a\nb' })
    expect(lines).toEqual(['{"time":"2026-12-07T12:00:00.000Z","level":"info","event":"stop","message":"stopped"}\n', 'handover: a b\n'])
  })
})

/** A writer that takes `delayMs` per chunk and says it is full past 1 KiB: a slow log reader. */
function collector(delayMs = 0): { out: Writable; text: () => string } {
  const chunks: Buffer[] = []
  const out = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk)
      if (delayMs === 0) done()
      else setTimeout(done, delayMs)
    },
  })
  return { out, text: () => Buffer.concat(chunks).toString() }
}

/**
 * A child that writes `lines` lines of its own pattern in random-sized
 * pieces with pauses between them (so the two children's pieces interleave
 * in time), one line of 150 KiB, and a last line without a newline; on
 * stdout and stderr alike.
 */
const WRITER = `
const tag = process.argv[1]
const out = [process.stdout, process.stderr]
let data = ''
for (let i = 0; i < 300; i++) data += tag + '-' + i + '-' + 'x'.repeat(i % 97) + '\\n'
data += tag + '-long-' + 'y'.repeat(150 * 1024) + '\\n'
data += tag + '-unterminated'
const streams = out.map((s) => ({ s, rest: data }))
const step = () => {
  let left = false
  for (const st of streams) {
    if (st.rest === '') continue
    // Small pieces through the numbered lines, bigger ones through the long line.
    const n = 1 + Math.floor(Math.random() * (st.rest.length > 150 * 1024 ? 40 : 8192))
    st.s.write(st.rest.slice(0, n))
    st.rest = st.rest.slice(n)
    if (st.rest.length > 0) left = true
  }
  // A timer, not setImmediate: the two children's writes spread over time and interleave.
  if (left) setTimeout(step, 1)
}
step()
`

/** Relays two children's stdout into one writer and their stderr into another, as the supervisor does with its own. */
async function relayTwoChildren(delayMs: number): Promise<{ outputs: string[][]; prefixes: string[]; pauses: number }> {
  const sinks = [collector(delayMs), collector(delayMs)]
  const relays = sinks.map((s) => new LogRelay(s.out))
  const done: Array<Promise<unknown>> = []
  const prefixes: string[] = []
  for (const tag of ['A', 'B']) {
    const child = spawn(process.execPath, ['-e', WRITER, tag], { stdio: ['ignore', 'pipe', 'pipe'] })
    const prefix = workerPrefix({ generation: 1, slot: prefixes.length, pid: child.pid! })
    prefixes.push(prefix)
    done.push(relays[0].attach(child.stdout!, prefix), relays[1].attach(child.stderr!, prefix))
    done.push(new Promise((resolve) => child.once('exit', resolve)))
  }
  await Promise.all(done)
  const outputs: string[][] = []
  for (const sink of sinks) {
    await new Promise<void>((resolve) => sink.out.end(resolve))
    const all = sink.text()
    expect(all.endsWith('\n')).toBe(true)
    outputs.push(all.slice(0, -1).split('\n'))
  }
  return { outputs, prefixes, pauses: relays[0].pauses + relays[1].pauses }
}

for (const [what, delay] of [['a fast reader', 0], ['a slow reader (the relay pauses the children)', 1]] as const) {
  describe(`two real children writing interleaved partial lines, to ${what}`, () => {
    it('every output line is whole and prefixed; each child\'s output comes back intact and in order', async () => {
      const { outputs, prefixes, pauses } = await relayTwoChildren(delay)
      // The slow reader did fill up, so the relay paused and resumed the children.
      if (delay > 0) expect(pauses).toBeGreaterThan(0)
      for (const lines of outputs) {
        // The two children's lines did alternate in the output (their writes were interleaved in time).
        let switches = 0
        for (let i = 1; i < lines.length; i++) if (lines[i].slice(0, 12) !== lines[i - 1].slice(0, 12)) switches++
        expect(switches).toBeGreaterThan(10)
        const byChild = new Map<string, string[]>(prefixes.map((p) => [p, []]))
        for (const line of lines) {
          const prefix = prefixes.find((p) => line.startsWith(p))
          expect(prefix, `an output line without a worker prefix: ${JSON.stringify(line.slice(0, 80))}`).toBeDefined()
          const body = line.slice(prefix!.length)
          const tag = prefix === prefixes[0] ? 'A' : 'B'
          // Whole: a line of this child's pattern, or a piece of its long line; never a mix.
          expect(new RegExp(`^(?:${tag}-\\d+-x*|${tag}-long-y*|y+|${tag}-unterminated)$`).test(body), JSON.stringify(body.slice(0, 80))).toBe(true)
          expect(body.length).toBeLessThanOrEqual(64 * 1024)
          byChild.get(prefix!)!.push(body)
        }
        for (const [i, prefix] of prefixes.entries()) {
          const tag = i === 0 ? 'A' : 'B'
          const bodies = byChild.get(prefix)!
          // Lines 0..299 in order, then the long line in three pieces of at most 64 KiB, then the unterminated one.
          expect(bodies.length).toBe(300 + 3 + 1)
          expect(bodies.slice(0, 300).map((b) => Number(b.split('-')[1]))).toEqual(Array.from({ length: 300 }, (_, n) => n))
          for (const [n, b] of bodies.slice(0, 300).entries()) expect(b === `${tag}-${n}-${'x'.repeat(n % 97)}`).toBe(true)
          const long = bodies.slice(300, 303).join('')
          expect(long.length).toBe(`${tag}-long-`.length + 150 * 1024)
          expect(long === `${tag}-long-${'y'.repeat(150 * 1024)}`).toBe(true)
          expect(bodies[303]).toBe(`${tag}-unterminated`)
        }
      }
    }, 60_000)
  })
}

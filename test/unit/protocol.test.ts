// The messages between generations (src/core/protocol.ts) and their framing
// (src/core/channel.ts): what is accepted, what is an ERR_PROTOCOL, and how
// two releases with different version ranges agree.
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { StreamTransport } from '../../src/backend/stream-transport.js'
import { Channel } from '../../src/core/channel.js'
import { chooseVersion, helloMessage, offeredVersions, protocolVersions, validateMessage, type HelloMessage, type Message } from '../../src/core/protocol.js'

const protocolError = (pattern: RegExp) => expect.objectContaining({ code: 'ERR_PROTOCOL', message: expect.stringMatching(pattern) })

describe('validateMessage', () => {
  it('accepts every message of this release, and ignores fields it does not know', () => {
    const good: unknown[] = [
      { type: 'hello', version: 1, versions: [1, 2], parentPid: 10, sockets: [{ key: 'tcp :80', network: 'tcp', address: '[::]:80', fd: 4 }] },
      { type: 'ready', pid: 11 },
      { type: 'ready', pid: 11, version: 2, keys: ['tcp :80'], later: { anything: true } },
      { type: 'refused', code: 'ERR_INCOMPATIBLE', message: 'no' },
      { type: 'handed-over' }, { type: 'drain' }, { type: 'upgrade-request' },
      { type: 'upgrade-result', ok: false, code: 'ERR_STOPPED' },
      { type: 'ping', id: 1 }, { type: 'pong', id: 1 }, { type: 'pong', id: 2, requests: 0 }, { type: 'pong', id: 3, requests: 1234 },
      { type: 'pong', id: 4, open: {} }, { type: 'pong', id: 5, open: { 'tcp :80': 30, 'tcp :81': 0 } },
      { type: 'shed', key: 'tcp :80', count: 3 },
    ]
    for (const m of good) expect(validateMessage(m), JSON.stringify(m)).toBe(m)
  })

  it('refuses malformed ones with ERR_PROTOCOL', () => {
    const bad: unknown[] = [
      null, 'ready', [], { type: 'nope' }, { type: 'ready' }, { type: 'ready', pid: '11' }, { type: 'ready', pid: 1, version: 1.5 },
      { type: 'ready', pid: 1, keys: 'tcp :80' }, { type: 'ready', pid: 1, keys: [1] },
      { type: 'refused', code: 1, message: '' }, { type: 'upgrade-result' },
      { type: 'ping' }, { type: 'ping', id: '1' }, { type: 'ping', id: 1.5 }, { type: 'pong' }, { type: 'pong', id: 1, requests: -1 },
      { type: 'pong', id: 1, requests: 1.5 }, { type: 'pong', id: 1, requests: '3' },
      { type: 'pong', id: 1, open: [3] }, { type: 'pong', id: 1, open: { k: -1 } }, { type: 'pong', id: 1, open: { k: '3' } }, { type: 'pong', id: 1, open: null },
      { type: 'shed', key: 'k' }, { type: 'shed', key: 'k', count: 0 }, { type: 'shed', key: 1, count: 2 }, { type: 'shed', key: 'k', count: 1.5 },
      { type: 'hello', version: 1, parentPid: 1, sockets: [{ key: 'k', network: 'sctp', address: 'x' }] },
      { type: 'hello', version: 1, parentPid: 1, sockets: [{ key: 'k', network: 'tcp', address: 'x', fd: '4' }] },
      { type: 'hello', version: 1, parentPid: 1, sockets: {} },
    ]
    for (const m of bad) expect(() => validateMessage(m), JSON.stringify(m)).toThrow(protocolError(/malformed|not an object/))
  })
})

describe("the hello's TLS session-ticket keys", () => {
  const keys = Buffer.alloc(48, 7).toString('base64')
  const hello = (ticketKeys: unknown): unknown => ({ type: 'hello', version: 1, versions: [1, 2], parentPid: 1, sockets: [], ticketKeys })

  it('helloMessage() carries them only when there are some', () => {
    expect(helloMessage([])).not.toHaveProperty('ticketKeys')
    expect(helloMessage([], {})).not.toHaveProperty('ticketKeys')
    expect(helloMessage([], { 'tcp4 127.0.0.1:443': keys }).ticketKeys).toEqual({ 'tcp4 127.0.0.1:443': keys })
  })

  it('48 bytes of base64 per socket key are accepted; anything else is ERR_PROTOCOL', () => {
    for (const good of [{}, { 'tcp :443': keys }, { 'tcp :443': keys, 'unix /run/a.sock': keys }, JSON.parse(`{"__proto__": "${keys}"}`)]) {
      expect(validateMessage(hello(good))).toEqual(hello(good))
    }
    const bad = [
      null, [], 'keys', [keys], { k: 1 }, { k: null }, { k: Buffer.alloc(47, 7).toString('base64') }, { k: Buffer.alloc(49, 7).toString('base64') },
      { k: Buffer.alloc(48, 7).toString('hex') }, { k: `${keys}=` }, { k: keys.replace(/.$/, '-') },
    ]
    for (const ticketKeys of bad) expect(() => validateMessage(hello(ticketKeys)), JSON.stringify(ticketKeys)).toThrow(protocolError(/malformed/))
  })

  it('never quotes them in an error', () => {
    // A hello malformed elsewhere (the pid) with real keys right at the start of the quote.
    const m = { ticketKeys: { k: keys }, type: 'hello', version: 1, parentPid: 'x', sockets: [] }
    expect(() => validateMessage(m)).toThrow(protocolError(/malformed control message .*not shown/))
    try {
      validateMessage(m)
    } catch (err) {
      expect((err as Error).message).not.toContain(keys.slice(0, 8))
    }
  })
})

describe('versions', () => {
  const hello = (version: number, versions?: [number, number]): HelloMessage => ({ type: 'hello', version, versions, parentPid: 1, sockets: [] })

  it('a hello says the lowest version it speaks as `version` (protocol 1 releases read only that), and its range', () => {
    const h = helloMessage([])
    expect(h.version).toBe(protocolVersions.min)
    expect(h.versions).toEqual([protocolVersions.min, protocolVersions.max])
  })

  it('the highest version both ranges share is chosen', () => {
    expect(chooseVersion(hello(1), { min: 1, max: 1 })).toBe(1)
    expect(chooseVersion(hello(1, [1, 2]), { min: 1, max: 3 })).toBe(2)
    expect(chooseVersion(hello(2, [2, 5]), { min: 1, max: 3 })).toBe(3)
    expect(() => chooseVersion(hello(2, [2, 2]), { min: 1, max: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_INCOMPATIBLE', message: 'the parent speaks handover protocol version 2, this process speaks version 1' }),
    )
    expect(() => chooseVersion(hello(1, [1, 1]), { min: 2, max: 3 })).toThrow(/speaks handover protocol version 1, this process speaks versions 2 to 3/)
  })

  it('a malformed range falls back to `version` alone', () => {
    for (const versions of [[2, 1], [1], ['1', '2'], null]) {
      expect(offeredVersions({ ...hello(1), versions } as never), JSON.stringify(versions)).toEqual([1, 1])
    }
  })
})

describe('Channel', () => {
  const open: net.Socket[] = []
  afterEach(() => {
    for (const s of open.splice(0)) s.destroy()
  })

  /** Two ends of a real loopback connection. */
  async function pair(): Promise<[net.Socket, net.Socket]> {
    const server = net.createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r))
    const a = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
    const b = await accepted
    server.close()
    open.push(a, b)
    return [a, b]
  }

  it('frames lines across chunks of any size, in order', async () => {
    const [a, b] = await pair()
    const channel = new Channel(new StreamTransport(b))
    const got: Message[] = []
    channel.on('message', (m: Message) => got.push(m))
    const text = `${JSON.stringify({ type: 'drain' })}\n${JSON.stringify({ type: 'ready', pid: 7, keys: ['x'.repeat(50_000)] })}\n`
    for (let i = 0; i < text.length; i += 7) a.write(text.slice(i, i + 7))
    await expect.poll(() => got.length).toBe(2)
    expect(got[0]).toEqual({ type: 'drain' })
    expect(got[1]).toMatchObject({ type: 'ready', pid: 7 })
  })

  it('one bad line is an ERR_PROTOCOL error, and nothing after it is emitted', async () => {
    const [a, b] = await pair()
    const channel = new Channel(new StreamTransport(b))
    const got: Message[] = []
    const errors: Error[] = []
    channel.on('message', (m: Message) => got.push(m))
    channel.on('error', (e: Error) => errors.push(e))
    a.write('{"type":"drain"}\nnot json\n{"type":"drain"}\n')
    await expect.poll(() => errors.length).toBe(1)
    expect(errors[0]).toEqual(protocolError(/not JSON: "not json"/))
    expect(got).toHaveLength(1)
  })

  it('a line longer than the limit is an error, not a buffer that grows forever', async () => {
    const [a, b] = await pair()
    const channel = new Channel(new StreamTransport(b), 1000)
    const errors: Error[] = []
    channel.on('error', (e: Error) => errors.push(e))
    a.write('x'.repeat(5000))
    await expect.poll(() => errors.length).toBe(1)
    expect(errors[0]).toEqual(protocolError(/longer than 1000 characters/))
  })

  it("'close' once the other side has gone", async () => {
    const [a, b] = await pair()
    const channel = new Channel(new StreamTransport(b))
    let closes = 0
    channel.on('close', () => closes++)
    a.end()
    await expect.poll(() => channel.closed).toBe(true)
    a.destroy()
    await new Promise((r) => setTimeout(r, 50))
    expect(closes).toBe(1)
  })
})

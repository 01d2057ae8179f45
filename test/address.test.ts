import { describe, expect, it } from 'vitest'
import { parseAddress } from '../src/core/address.js'
import { HandoverError } from '../src/core/errors.js'

const key = (network: string, address: string, packet = false) => parseAddress(network, address, packet, '/srv/app').key

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(HandoverError)
    return (err as HandoverError).code
  }
  return undefined
}

describe('address normalisation', () => {
  it('names one dual-stack socket for every tcp wildcard form', () => {
    expect(key('tcp', ':8080')).toBe('tcp [::]:8080')
    expect(key('tcp', '0.0.0.0:8080')).toBe('tcp [::]:8080')
    expect(key('tcp', '[::]:8080')).toBe('tcp [::]:8080')
    expect(key('tcp', '[0:0::0]:8080')).toBe('tcp [::]:8080')
    const spec = parseAddress('tcp', ':8080', false, '/')
    expect(spec).toMatchObject({ kind: 'inet', family: 6, ip: '::', v6only: false, dualStack: true })
  })

  it('keeps tcp4 and tcp6 wildcards apart from the dual-stack one', () => {
    expect(key('tcp4', ':8080')).toBe('tcp4 0.0.0.0:8080')
    expect(key('tcp4', '0.0.0.0:8080')).toBe('tcp4 0.0.0.0:8080')
    expect(key('tcp6', ':8080')).toBe('tcp6 [::]:8080')
    expect(key('tcp6', '[::]:8080')).toBe('tcp6 [::]:8080')
    expect(parseAddress('tcp6', ':1', false, '/')).toMatchObject({ v6only: true })
  })

  it('gives a specific address the same key whichever network family spelled it', () => {
    expect(key('tcp', '127.0.0.1:80')).toBe(key('tcp4', '127.0.0.1:80'))
    expect(key('tcp', '[::1]:80')).toBe(key('tcp6', '[::1]:80'))
    expect(key('tcp', '[0:0:0:0:0:0:0:1]:80')).toBe('tcp6 [::1]:80')
    expect(key('tcp', '[::ffff:127.0.0.1]:80')).toBe('tcp4 127.0.0.1:80')
  })

  it('resolves localhost once, to the loopback of the family', () => {
    expect(key('tcp', 'localhost:80')).toBe('tcp4 127.0.0.1:80')
    expect(key('tcp4', 'localhost:80')).toBe('tcp4 127.0.0.1:80')
    expect(key('tcp6', 'localhost:80')).toBe('tcp6 [::1]:80')
  })

  it('normalises udp like tcp, under its own names', () => {
    expect(key('udp', ':53', true)).toBe('udp [::]:53')
    expect(key('udp4', '127.0.0.1:53', true)).toBe('udp4 127.0.0.1:53')
    expect(parseAddress('udp', ':53', true, '/')).toMatchObject({ transport: 'dgram' })
  })

  it('resolves unix paths against the working directory, and keeps abstract names', () => {
    expect(key('unix', 'run/app.sock')).toBe('unix /srv/app/run/app.sock')
    expect(key('unix', '/run/app.sock')).toBe('unix /run/app.sock')
    if (process.platform === 'linux') expect(parseAddress('unix', '@app', false, '/')).toMatchObject({ abstract: true, path: 'app' })
  })
})

describe('a port number as the address', () => {
  it('means the wildcard of the network, with the same key as `:port`', () => {
    expect(parseAddress('tcp', 8080, false, '/').key).toBe(key('tcp', ':8080'))
    expect(parseAddress('tcp', 8080, false, '/')).toMatchObject({ dualStack: true, port: 8080, requested: ':8080' })
    expect(parseAddress('tcp4', 8080, false, '/').key).toBe('tcp4 0.0.0.0:8080')
    expect(parseAddress('tcp6', 8080, false, '/').key).toBe('tcp6 [::]:8080')
    expect(parseAddress('udp', 53, true, '/').key).toBe('udp [::]:53')
    expect(parseAddress('tcp', 0, false, '/')).toMatchObject({ port: 0 })
  })

  it.each([
    ['tcp', 65536],
    ['tcp', -1],
    ['tcp', 80.5],
    ['tcp', Number.NaN],
    ['tcp', Infinity],
    ['unix', 8080],
  ])('%s %s → ERR_INVALID_ADDRESS', (network, port) => {
    expect(codeOf(() => parseAddress(network, port, false, '/'))).toBe('ERR_INVALID_ADDRESS')
  })

  it('says why a number was refused', () => {
    expect(() => parseAddress('tcp', 70000, false, '/')).toThrow(/port must be a number from 0 to 65535/)
    expect(() => parseAddress('unix', 8080, false, '/')).toThrow(/unix socket takes a path, not a port number/)
  })
})

describe('bad addresses and networks', () => {
  it.each([
    ['tcp', 'nonsense'],
    ['tcp', ':99999'],
    ['tcp', '[::1'],
    ['tcp', '[::1]'],
    ['tcp', '::1:80'],
    ['tcp', 'example.com:80'],
    ['tcp', ':http'],
    ['tcp', ':-1'],
    ['tcp', ''],
    ['tcp4', '[::1]:80'],
    ['tcp4', '[::]:80'],
    ['tcp6', '127.0.0.1:80'],
    ['tcp6', '0.0.0.0:80'],
    ['tcp', '[fe80::1%eth0]:80'],
    ['unix', ''],
    ['unix', 'a\0b'],
  ])('%s %j → ERR_INVALID_ADDRESS', (network, address) => {
    expect(codeOf(() => parseAddress(network, address, false, '/'))).toBe('ERR_INVALID_ADDRESS')
  })

  it.each([
    ['udp', false],
    ['sctp', false],
    ['tcp', true],
    ['unix', true],
    ['', false],
  ])('network %j (packet: %s) → ERR_INVALID_NETWORK', (network, packet) => {
    expect(codeOf(() => parseAddress(network, ':80', packet, '/'))).toBe('ERR_INVALID_NETWORK')
  })

  it('says what was wrong in the message', () => {
    expect(() => parseAddress('tcp', ':99999', false, '/')).toThrow(/port must be a number from 0 to 65535/)
    expect(() => parseAddress('tcp', '[::1', false, '/')).toThrow(/missing '\]'/)
    expect(() => parseAddress('tcp', 'nonsense', false, '/')).toThrow(/missing port/)
  })

  it('recognises a URL instead of calling it an unbracketed IPv6 address', () => {
    for (const url of ['http://localhost:8080', 'https://127.0.0.1:443', 'tcp://:8080', 'HTTP://[::1]:80']) {
      expect(() => parseAddress('tcp', url, false, '/'), url).toThrow(/a URL is not an address: write host:port, e.g\. localhost:8080/)
      expect(codeOf(() => parseAddress('tcp', url, false, '/'))).toBe('ERR_INVALID_ADDRESS')
    }
  })
})

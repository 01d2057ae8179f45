// The operating flags of `handover run` (src/service/ops-options.ts): parsing and refusal.
import { describe, expect, it } from 'vitest'
import { opsUsage, parseHostPort, parseOpsFlag, type OpsOptions } from '../src/service/ops-options.js'

const invalid = expect.objectContaining({ name: 'HandoverError', code: 'ERR_INVALID_OPTION' })

describe('the operating flags', () => {
  it('host:port in its forms; :port is every interface', () => {
    expect(parseHostPort('127.0.0.1:9090', '--metrics')).toEqual({ host: '127.0.0.1', port: 9090 })
    expect(parseHostPort('[::1]:9090', '--metrics')).toEqual({ host: '::1', port: 9090 })
    expect(parseHostPort('localhost:0', '--probes')).toEqual({ host: 'localhost', port: 0 })
    expect(parseHostPort(':9100', '--probes')).toEqual({ host: '0.0.0.0', port: 9100 })
    for (const bad of ['9090', 'host', '::1:9090', '[::1]', 'a:b', 'h:65536', 'h:123456', '', 'a b:1', '/x:1']) {
      expect(() => parseHostPort(bad, '--metrics'), bad).toThrow(invalid)
    }
  })

  it('each flag, inline or as the next argument; --log-prefix alone is on, =off or --no-log-prefix off', () => {
    const o: OpsOptions = {}
    expect(parseOpsFlag(o, '--name', undefined, 'api')).toBe(2)
    expect(parseOpsFlag(o, '--metrics', ':9090', undefined)).toBe(1)
    expect(parseOpsFlag(o, '--probes', undefined, '0.0.0.0:8081')).toBe(2)
    expect(parseOpsFlag(o, '--shutdown-delay', '5000', undefined)).toBe(1)
    expect(parseOpsFlag(o, '--log-format', undefined, 'json')).toBe(2)
    expect(parseOpsFlag(o, '--log-prefix', undefined, 'app.js')).toBe(1)
    expect(o).toEqual({ name: 'api', metrics: { host: '0.0.0.0', port: 9090 }, probes: { host: '0.0.0.0', port: 8081 }, shutdownDelay: 5000, logFormat: 'json', logPrefix: true })
    expect(parseOpsFlag(o, '--log-prefix', 'off', undefined)).toBe(1)
    expect(o.logPrefix).toBe(false)
    expect(parseOpsFlag(o, '--log-prefix', 'on', undefined)).toBe(1)
    expect(parseOpsFlag(o, '--no-log-prefix', undefined, undefined)).toBe(1)
    expect(o.logPrefix).toBe(false)
    expect(parseOpsFlag(o, '--workers', undefined, '2')).toBe(0)
  })

  it('bad values and missing ones are ERR_INVALID_OPTION naming the flag', () => {
    const o: OpsOptions = {}
    expect(() => parseOpsFlag(o, '--name', '../x', undefined)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION', message: expect.stringMatching(/^invalid --name "\.\.\/x"/) }))
    expect(() => parseOpsFlag(o, '--shutdown-delay', '-1', undefined)).toThrow(invalid)
    expect(() => parseOpsFlag(o, '--shutdown-delay', '5s', undefined)).toThrow(invalid)
    expect(() => parseOpsFlag(o, '--log-format', 'xml', undefined)).toThrow(invalid)
    expect(() => parseOpsFlag(o, '--log-prefix', 'maybe', undefined)).toThrow(invalid)
    expect(() => parseOpsFlag(o, '--metrics', undefined, undefined)).toThrow(expect.objectContaining({ message: '--metrics needs a value: <host:port>' }))
    expect(o).toEqual({})
  })

  it('the usage lists every flag', () => {
    const usage = opsUsage()
    for (const flag of ['--name <name>', '--metrics <host:port>', '--probes <host:port>', '--shutdown-delay <ms>', '--log-prefix', '--log-format text|json']) expect(usage).toContain(flag)
  })
})

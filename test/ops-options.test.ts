// The operating flags of `handover run` (src/service/ops-options.ts): parsing and refusal.
import { describe, expect, it } from 'vitest'
import { parseCommandLine } from '../src/service/args.js'
import { OPS_FLAG_SPEC, opsFromValues, opsUsage, parseHostPort } from '../src/service/ops-options.js'

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

  it('each flag, through the command line\'s one parser (service/args.ts)', () => {
    const argv = ['--name', 'api', '--metrics=:9090', '--probes', '0.0.0.0:8081', '--shutdown-delay', '5000', '--log-format', 'json', '--log-prefix', 'app.js', '--port', '1']
    const { values, rest } = parseCommandLine(argv, OPS_FLAG_SPEC, true)
    expect(rest).toEqual(['app.js', '--port', '1'])
    expect(opsFromValues(values)).toEqual({ name: 'api', metrics: { host: '0.0.0.0', port: 9090 }, probes: { host: '0.0.0.0', port: 8081 }, shutdownDelay: 5000, logFormat: 'json', logPrefix: true })
    expect(opsFromValues(parseCommandLine(['--no-log-prefix', 'app.js'], OPS_FLAG_SPEC, true).values)).toEqual({ logPrefix: false })
    expect(opsFromValues({})).toEqual({})
  })

  it('bad values are ERR_INVALID_OPTION naming the flag', () => {
    expect(() => opsFromValues({ name: '../x' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION', message: expect.stringMatching(/^invalid --name "\.\.\/x"/) }))
    expect(() => opsFromValues({ 'shutdown-delay': '-1' })).toThrow(invalid)
    expect(() => opsFromValues({ 'shutdown-delay': '5s' })).toThrow(invalid)
    expect(() => opsFromValues({ 'log-format': 'xml' })).toThrow(invalid)
    expect(() => opsFromValues({ metrics: '9090' })).toThrow(invalid)
    expect(() => opsFromValues({ 'log-prefix': true, 'no-log-prefix': true })).toThrow(invalid)
  })

  it('the usage lists every flag', () => {
    const usage = opsUsage()
    for (const flag of ['--name <name>', '--metrics <host:port>', '--probes <host:port>', '--shutdown-delay <ms>', '--log-prefix', '--no-log-prefix', '--log-format text|json']) expect(usage).toContain(flag)
  })
})

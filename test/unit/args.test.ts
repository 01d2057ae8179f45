// The `handover` command's one flag parser (src/service/args.ts) and
// `handover run`'s reading of it (src/supervisor/run-command.ts).
import { describe, expect, it } from 'vitest'
import { parseCommandLine, UsageError } from '../../src/service/args.js'
import { parseRunArgs } from '../../src/supervisor/run-command.js'

describe('parseCommandLine', () => {
  const flags = { socket: { type: 'string', short: 's' }, json: { type: 'boolean' } } as const

  it('reads flags anywhere, and positionals', () => {
    expect(parseCommandLine(['status', '--socket', '/run/a.sock', '--json'], flags)).toMatchObject({
      values: { socket: '/run/a.sock', json: true }, positionals: ['status'], rest: [],
    })
    expect(parseCommandLine(['-s', '/x', 'upgrade'], flags).values.socket).toBe('/x')
  })

  it('an unknown flag or a missing value is a UsageError', () => {
    expect(() => parseCommandLine(['--nope'], flags)).toThrow(UsageError)
    expect(() => parseCommandLine(['--socket'], flags)).toThrow(UsageError)
  })

  it('with stopAtPositional, the first other word and everything after it are left alone', () => {
    const r = parseCommandLine(['-s', '/x', 'app.js', '--socket', 'y', '--unknown'], flags, true)
    expect(r.values).toEqual({ socket: '/x' })
    expect(r.rest).toEqual(['app.js', '--socket', 'y', '--unknown'])
    expect(parseCommandLine(['--json', '--', '--app-flag'], flags, true).rest).toEqual(['--app-flag'])
    expect(parseCommandLine(['--socket=/z', 'app.js'], flags, true).rest).toEqual(['app.js'])
  })
})

describe('handover run', () => {
  it('options first, then the script and its own arguments', () => {
    expect(parseRunArgs(['-w', '2', '--ready-timeout=500', '--rolling', 'app.js', '--port', '3'])).toEqual({
      script: 'app.js', args: ['--port', '3'], workers: 2, readyTimeout: 500, rolling: true,
    })
    expect(parseRunArgs(['--workers', 'max', 'app.js']).workers).toBe('max')
    expect(parseRunArgs(['--help']).help).toBe(true)
  })

  it('bad usage is a UsageError that says what is wrong', () => {
    expect(() => parseRunArgs(['--workers', '2'])).toThrow(/no script to run/)
    expect(() => parseRunArgs(['--workers', 'lots', 'a.js'])).toThrow(/--workers takes a number from 1 to 1024 or max, not "lots"/)
    expect(() => parseRunArgs(['--workers', '0', 'a.js'])).toThrow(UsageError)
    expect(() => parseRunArgs(['--drain-timeout', '1s', 'a.js'])).toThrow(/--drain-timeout takes milliseconds, not "1s"/)
    expect(() => parseRunArgs(['--bogus', 'a.js'])).toThrow(/Unknown option '--bogus'/)
  })
})

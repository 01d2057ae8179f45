// The `handover` command's one flag parser (src/service/args.ts) and
// `handover run`'s reading of it (src/supervisor/run-command.ts).
import { describe, expect, it } from 'vitest'
import { parseCommandLine, UsageError } from '../../src/service/args.js'
import { parseRunArgs, RUN_USAGE } from '../../src/supervisor/run-command.js'

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

  it('the operating flags, each read into its option', () => {
    const argv = [
      '--name', 'api', '--metrics=:9090', '--probes', '0.0.0.0:8081', '--shutdown-delay', '5000', '--log-format', 'json', '--log-prefix',
      '--node-args', '--import tsx --enable-source-maps', '--max-rss', '200M', '--watchdog', '2000', 'app.ts', '--port', '1',
    ]
    expect(parseRunArgs(argv)).toEqual({
      script: 'app.ts', args: ['--port', '1'], name: 'api', metrics: { host: '0.0.0.0', port: 9090 }, probes: { host: '0.0.0.0', port: 8081 },
      shutdownDelay: 5000, logFormat: 'json', logPrefix: true, nodeArgs: ['--import', 'tsx', '--enable-source-maps'], maxRss: 200 * 2 ** 20, watchdog: 2000,
    })
    expect(parseRunArgs(['--no-log-prefix', 'app.js'])).toEqual({ script: 'app.js', args: [], logPrefix: false })
    expect(parseRunArgs(['--node-args=--inspect=0', 'app.js']).nodeArgs).toEqual(['--inspect=0'])
    // A dash-led value only after --node-args; the script's own flags are untouched.
    expect(parseRunArgs(['app.js', '--node-args', '--x']).args).toEqual(['--node-args', '--x'])
  })

  it('the usage lists every flag', () => {
    for (const flag of [
      '-w, --workers <n|max>', '--name <name>', '--metrics <host:port>', '--probes <host:port>', '--shutdown-delay <ms>', '--log-prefix', '--no-log-prefix',
      '--log-format text|json', '--node-args "<flags>"', '--max-rss <size>', '--watchdog <ms>', '--control-socket <path>', '--rolling',
    ]) expect(RUN_USAGE).toContain(flag)
    expect(RUN_USAGE).not.toMatch(/availableParallelism/)
  })

  it('bad usage is a UsageError that says what is wrong', () => {
    expect(() => parseRunArgs(['--name', '../x', 'a.js'])).toThrow(/^invalid --name "\.\.\/x"/)
    expect(() => parseRunArgs(['--shutdown-delay', '-1', 'a.js'])).toThrow(UsageError)
    expect(() => parseRunArgs(['--shutdown-delay', '5s', 'a.js'])).toThrow(/--shutdown-delay takes milliseconds, not "5s"/)
    expect(() => parseRunArgs(['--watchdog', '50', 'a.js'])).toThrow(/--watchdog takes milliseconds from 100, not "50"/)
    expect(() => parseRunArgs(['--log-format', 'xml', 'a.js'])).toThrow(/text or json/)
    expect(() => parseRunArgs(['--metrics', '9090', 'a.js'])).toThrow(/host:port/)
    expect(() => parseRunArgs(['--max-rss', 'lots', 'a.js'])).toThrow(/^invalid --max-rss "lots"/)
    expect(() => parseRunArgs(['--node-args', '"--import tsx', 'a.js'])).toThrow(/quote is not closed/)
    expect(() => parseRunArgs(['--log-prefix', '--no-log-prefix', 'a.js'])).toThrow(/not both/)
    expect(() => parseRunArgs(['--workers', '2'])).toThrow(/no script to run/)
    expect(() => parseRunArgs(['--workers', 'lots', 'a.js'])).toThrow(/--workers takes a number from 1 to 1024 or max, not "lots"/)
    expect(() => parseRunArgs(['--workers', '0', 'a.js'])).toThrow(UsageError)
    expect(() => parseRunArgs(['--drain-timeout', '1s', 'a.js'])).toThrow(/--drain-timeout takes milliseconds, not "1s"/)
    expect(() => parseRunArgs(['--bogus', 'a.js'])).toThrow(/Unknown option '--bogus'/)
  })
})

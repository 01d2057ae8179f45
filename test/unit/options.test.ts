// The one options module (src/core/options.ts): every default, every
// environment name and every check, in milliseconds, without processes.
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  checkName, controlSocketPath, DEFAULTS, ENV, listenName, nameProblem, readPreloadSettings, resolveDrainOptions, resolveSupervisorOptions as resolveWith,
  resolveUpgraderOptions, resolveUpgradeOptions, workerEnv, MAX_TIMEOUT, type SupervisorOptions,
} from '../../src/core/options.js'
import { choiceText, hostPortText, parseMs, sizeText, wordsText } from '../../src/core/option-values.js'

/** -w max counts 3 CPUs here (supervisor/ counts them for real: test/cpu-count.test.ts). */
const resolveSupervisorOptions = (o: SupervisorOptions) => resolveWith(o, () => 3)

const invalid = (pattern: RegExp) => expect.objectContaining({ code: 'ERR_INVALID_OPTION', message: expect.stringMatching(pattern) })

describe('the Upgrader', () => {
  it('fills in the defaults from the one table', () => {
    const o = resolveUpgraderOptions({})
    expect(o).toMatchObject({ readyTimeout: DEFAULTS.readyTimeout, parentTimeout: DEFAULTS.parentTimeout, probation: 0, controlSocketMode: 0o600, compileCache: true })
    expect(o.command).toBe(process.execPath)
    expect(o.cwd).toBe(process.cwd())
  })

  it('upgradeTimeout is the older name of readyTimeout; both at once must agree', () => {
    expect(resolveUpgraderOptions({ upgradeTimeout: 5 }).readyTimeout).toBe(5)
    expect(resolveUpgraderOptions({ readyTimeout: 7 }).readyTimeout).toBe(7)
    expect(resolveUpgraderOptions({ readyTimeout: 7, upgradeTimeout: 7 }).readyTimeout).toBe(7)
    expect(() => resolveUpgraderOptions({ readyTimeout: 7, upgradeTimeout: 8 })).toThrow(invalid(/upgradeTimeout must be left out: it is the older name of readyTimeout/))
  })

  it('refuses each bad value with ERR_INVALID_OPTION naming the option', () => {
    for (const [bad, name] of [
      [{ readyTimeout: 0 }, 'readyTimeout'], [{ readyTimeout: MAX_TIMEOUT + 1 }, 'readyTimeout'], [{ parentTimeout: '10' }, 'parentTimeout'],
      [{ probation: -1 }, 'probation'], [{ pidFile: '' }, 'pidFile'], [{ command: 3 }, 'command'], [{ args: ['a', 1] }, 'args'],
      [{ env: null }, 'env'], [{ controlSocketMode: 0o1000 }, 'controlSocketMode'], [{ compileCache: 'yes' }, 'compileCache'],
      [{ controlSocket: '@abstract' }, 'controlSocket'], [{ cwd: 'a\0b' }, 'cwd'],
    ] as const) {
      expect(() => resolveUpgraderOptions(bad as never), JSON.stringify(bad)).toThrow(invalid(new RegExp(`^option ${name} must be`)))
    }
    expect(() => resolveUpgraderOptions(null as never)).toThrow(invalid(/options must be an object/))
  })

  it('resolves the pid file against cwd', () => {
    expect(resolveUpgraderOptions({ cwd: '/srv/app', pidFile: 'app.pid' }).pidFile).toBe('/srv/app/app.pid')
  })

  it("upgrade()'s options: waitForParent in ms, a real AbortSignal", () => {
    expect(resolveUpgradeOptions(undefined)).toBe(0)
    expect(resolveUpgradeOptions({ waitForParent: 500 })).toBe(500)
    expect(() => resolveUpgradeOptions({ signal: {} as AbortSignal })).toThrow(invalid(/signal must be an AbortSignal/))
  })

  it('listen() names follow FileDescriptorName= rules', () => {
    expect(listenName(undefined)).toBeUndefined()
    expect(listenName({ name: 'web' })).toBe('web')
    for (const name of ['', 'a:b', 'a b', 'x'.repeat(256), 7]) {
      expect(() => listenName({ name } as never), String(name)).toThrow(invalid(/option name must be/))
    }
  })
})

describe('the control socket', () => {
  it('is a path for the Upgrader and handover run alike, never an abstract name (it has no permissions)', () => {
    expect(controlSocketPath('/run/app.sock')).toBe('/run/app.sock')
    expect(() => controlSocketPath('@app')).toThrow(invalid(/not an abstract @name/))
    expect(() => resolveSupervisorOptions({ script: 'app.js', controlSocket: '@app' })).toThrow(invalid(/not an abstract @name/))
    expect(() => controlSocketPath('')).toThrow(invalid(/a unix socket path/))
  })
})

describe('drain()', () => {
  it('defaults and bounds', () => {
    expect(resolveDrainOptions({})).toEqual({ idleGrace: DEFAULTS.idleGrace, timeout: DEFAULTS.drainTimeout, handOff: true, signal: undefined, leaveWindow: undefined })
    expect(resolveDrainOptions({ timeout: 8000, leaveWindow: 10_000 }).leaveWindow).toBe(6000)
    expect(() => resolveDrainOptions({ handOff: 'no' } as never)).toThrow(invalid(/^option handOff must be true or false/))
    expect(resolveDrainOptions({ idleGrace: 0, timeout: 0 })).toMatchObject({ idleGrace: 0, timeout: 0 })
    expect(() => resolveDrainOptions({ timeout: -1 })).toThrow(invalid(/^option timeout must be a number of ms from 0/))
  })
})

describe('handover/register', () => {
  it('reads its settings from the environment, with the defaults of the API', () => {
    expect(readPreloadSettings({})).toEqual({
      pidFile: undefined, readyTimeout: DEFAULTS.readyTimeout, drainTimeout: DEFAULTS.drainTimeout, exitGrace: DEFAULTS.exitGrace, upgradeSignal: 'SIGHUP',
      leaveWindow: DEFAULTS.leaveWindow, leaveWindowSet: false, handOff: true, readyProbe: undefined, probation: 0, controlSocket: undefined, name: undefined,
    })
    const s = readPreloadSettings({
      [ENV.pidFile]: '/run/a.pid', [ENV.readyTimeout]: '1500', [ENV.drainTimeout]: '0', [ENV.exitGrace]: '10', [ENV.upgradeSignal]: 'SIGUSR2', [ENV.leaveWindow]: '2000',
    })
    expect(s).toEqual({
      pidFile: '/run/a.pid', readyTimeout: 1500, drainTimeout: 0, exitGrace: 10, upgradeSignal: 'SIGUSR2', leaveWindow: 2000, leaveWindowSet: true, handOff: true,
      readyProbe: undefined, probation: 0, controlSocket: undefined, name: undefined,
    })
    expect(readPreloadSettings({ [ENV.readyProbe]: '/healthz', [ENV.probation]: '2000' })).toMatchObject({ readyProbe: '/healthz', probation: 2000 })
    expect(() => readPreloadSettings({ [ENV.readyProbe]: 'healthz' })).toThrow(invalid(/^option HANDOVER_READY_PROBE must be a path such as \/healthz/))
    expect(readPreloadSettings({ [ENV.handOff]: '0' }).handOff).toBe(false)
    expect(() => readPreloadSettings({ [ENV.handOff]: 'maybe' })).toThrow(invalid(/^option HANDOVER_HAND_OFF must be 1 or 0/))
    expect(readPreloadSettings({ [ENV.leaveWindow]: 'off' })).toMatchObject({ leaveWindow: undefined, leaveWindowSet: true })
    expect(() => readPreloadSettings({ [ENV.upgradeSignal]: 'SIGUSR1' })).toThrow(invalid(/^option HANDOVER_UPGRADE_SIGNAL must be one of SIGHUP, SIGUSR2/))
  })

  it('the control socket: a path (resolved), 0/off/false for none, or HANDOVER_NAME for <runtime dir>/<name>.sock', () => {
    expect(ENV.controlSocket).toBe('HANDOVER_CONTROL_SOCKET')
    expect(ENV.name).toBe('HANDOVER_NAME')
    expect(readPreloadSettings({ [ENV.controlSocket]: '/run/app/control.sock' }).controlSocket).toBe('/run/app/control.sock')
    expect(readPreloadSettings({ [ENV.controlSocket]: 'control.sock' }).controlSocket).toBe(resolve('control.sock'))
    for (const off of ['0', 'off', 'false']) expect(readPreloadSettings({ [ENV.controlSocket]: off }).controlSocket, off).toBe(false)
    expect(readPreloadSettings({ [ENV.controlSocket]: '' }).controlSocket).toBeUndefined()
    expect(() => readPreloadSettings({ [ENV.controlSocket]: '@abstract' })).toThrow(invalid(/^option HANDOVER_CONTROL_SOCKET must be a unix socket path, or 0 for none/))
    expect(readPreloadSettings({ [ENV.name]: 'api' }).name).toBe('api')
    expect(readPreloadSettings({ [ENV.name]: '' }).name).toBeUndefined()
    expect(() => readPreloadSettings({ [ENV.name]: '../etc' })).toThrow(invalid(/^invalid HANDOVER_NAME "\.\.\/etc"/))
  })

  it('HANDOVER_UPGRADE_TIMEOUT is still read; HANDOVER_READY_TIMEOUT wins', () => {
    expect(readPreloadSettings({ [ENV.upgradeTimeout]: '900' }).readyTimeout).toBe(900)
    expect(readPreloadSettings({ [ENV.upgradeTimeout]: '900', [ENV.readyTimeout]: '800' }).readyTimeout).toBe(800)
  })

  it('a bad value names the variable', () => {
    for (const [name, value] of [[ENV.readyTimeout, '0'], [ENV.drainTimeout, '1s'], [ENV.exitGrace, '-5'], [ENV.upgradeTimeout, 'x']]) {
      expect(() => readPreloadSettings({ [name]: value }), name).toThrow(invalid(new RegExp(`^option ${name} must be a number of ms`)))
    }
  })
})

describe('handover run', () => {
  it('defaults, max workers and bounds', () => {
    const o = resolveSupervisorOptions({ script: 'app.js', cwd: '/srv' })
    expect(o).toMatchObject({ script: '/srv/app.js', workers: 1, readyTimeout: DEFAULTS.readyTimeout, drainTimeout: DEFAULTS.drainTimeout, rolling: false })
    expect(resolveSupervisorOptions({ script: 'a', workers: 'max' }).workers).toBe(3)
    expect(resolveWith({ script: 'a', workers: 'max' }, () => 0).workers).toBe(1)
    for (const workers of [0, 1025, 1.5, '2']) {
      expect(() => resolveSupervisorOptions({ script: 'a', workers } as never), String(workers)).toThrow(invalid(/^option workers must be/))
    }
    expect(() => resolveSupervisorOptions({ script: '' })).toThrow(invalid(/^option script must be/))
    expect(() => resolveSupervisorOptions({ script: 'a', rolling: 'yes' } as never)).toThrow(invalid(/^option rolling must be true or false/))
  })

  it('the operating options: defaults, and refusals naming the option', () => {
    const o = resolveSupervisorOptions({ script: 'app.js' })
    expect(o).toMatchObject({ nodeArgs: [], shutdownDelay: 0, logFormat: 'text', logPrefix: process.stdout.isTTY === true })
    expect(o.maxRss).toBeUndefined()
    expect(o.watchdog).toBeUndefined()
    expect(o.metrics).toBeUndefined()
    const full = resolveSupervisorOptions({
      script: 'a.ts', name: 'api', nodeArgs: ['--import', 'tsx'], maxRss: 200 * 2 ** 20, watchdog: 2000, metrics: { host: '127.0.0.1', port: 0 },
      probes: { host: '::1', port: 8081 }, shutdownDelay: 1500, logPrefix: true, logFormat: 'json',
    })
    expect(full).toMatchObject({ name: 'api', nodeArgs: ['--import', 'tsx'], maxRss: 209715200, watchdog: 2000, shutdownDelay: 1500, logPrefix: true, logFormat: 'json' })
    const bad: Array<[Partial<SupervisorOptions>, RegExp]> = [
      [{ name: '../x' }, /^invalid name "\.\.\/x": it holds a slash/],
      [{ nodeArgs: '--import tsx' as never }, /^option nodeArgs must be an array of strings/],
      [{ maxRss: 0 }, /^option maxRss must be a whole number of bytes/],
      [{ maxRss: 1.5 }, /^option maxRss/],
      [{ watchdog: DEFAULTS.minWatchdog - 1 }, /^option watchdog must be a whole number from 100/],
      [{ metrics: '127.0.0.1:9090' as never }, /^option metrics must be \{ host, port \}/],
      [{ probes: { host: 'x', port: 70000 } }, /^option probes/],
      [{ shutdownDelay: -1 }, /^option shutdownDelay/],
      [{ logFormat: 'xml' as never }, /^option logFormat must be 'text' or 'json'/],
      [{ logPrefix: 1 as never }, /^option logPrefix must be true or false/],
      [{ onEvent: 'x' as never }, /^option onEvent must be a function/],
    ]
    for (const [options, pattern] of bad) expect(() => resolveSupervisorOptions({ script: 'a.js', ...options }), JSON.stringify(options)).toThrow(invalid(pattern))
  })

  it('safe deploys: defaults, values, and the combinations that cannot mean anything', () => {
    const o = resolveSupervisorOptions({ script: 'app.js' })
    expect(o).toMatchObject({ probation: 0, keepOld: 0 })
    expect(o.readyProbe).toBeUndefined()
    expect(o.canary).toBeUndefined()
    expect(o.maxErrorRate).toBeUndefined()
    const full = resolveSupervisorOptions({ script: 'a.js', workers: 4, readyProbe: '/healthz?deep=1', probation: 5000, canary: 1, maxErrorRate: 0.05, keepOld: 60_000 })
    expect(full).toMatchObject({ readyProbe: '/healthz?deep=1', probation: 5000, canary: 1, maxErrorRate: 0.05, keepOld: 60_000 })
    expect(workerEnv({}, { drainTimeout: 1000, upgradeSignal: 'SIGHUP', readyProbe: '/ok' })[ENV.readyProbe]).toBe('/ok')
    const bad: Array<[Partial<SupervisorOptions>, RegExp]> = [
      [{ readyProbe: 'healthz' }, /^option readyProbe must be a path such as \/healthz/],
      [{ readyProbe: '/a b' }, /^option readyProbe/],
      [{ probation: -1 }, /^option probation/],
      [{ probation: 1000, maxErrorRate: 1.5 }, /^option maxErrorRate must be a fraction from 0 to 1/],
      [{ probation: 1000, maxErrorRate: Number.NaN }, /^option maxErrorRate/],
      [{ workers: 2, probation: 1000, canary: 3 }, /^option canary must be/],
      [{ workers: 2, probation: 1000, canary: 0 }, /^option canary must be/],
      [{ canary: 1 }, /^option canary needs a probation/],
      [{ maxErrorRate: 0.1, probation: 0 }, /^option maxErrorRate needs a probation/],
      [{ keepOld: -5 }, /^option keepOld/],
      [{ rolling: true, probation: 1000 }, /^option probation cannot be used with rolling/],
      [{ rolling: true, keepOld: 1000 }, /^option keepOld cannot be used with rolling/],
    ]
    for (const [options, pattern] of bad) expect(() => resolveSupervisorOptions({ script: 'a.js', ...options }), JSON.stringify(options)).toThrow(invalid(pattern))
    // 0 is the default, so it is no conflict.
    expect(resolveSupervisorOptions({ script: 'a.js', rolling: true, probation: 0, keepOld: 0 }).rolling).toBe(true)
  })

  it('balance: on by default, off with --no-balance, and off with the hand-off it moves connections through', () => {
    expect(resolveSupervisorOptions({ script: 'a.js' }).balance).toBe(true)
    expect(resolveSupervisorOptions({ script: 'a.js', balance: false }).balance).toBe(false)
    expect(resolveSupervisorOptions({ script: 'a.js', handOff: false }).balance).toBe(false)
    expect(() => resolveSupervisorOptions({ script: 'a.js', balance: 'no' as never })).toThrow(invalid(/^option balance must be true or false/))
  })

  it('service names: what a control socket may be called', () => {
    for (const good of ['api', 'my-app.v2', '_x', '9', 'a'.repeat(64)]) expect(nameProblem(good), good).toBeUndefined()
    for (const bad of ['', 'a'.repeat(65), 'a/b', 'a\\b', '..', '.', '-x', '.hidden', 'a b', 'é']) expect(nameProblem(bad), bad).toBeDefined()
    expect(() => checkName('a b', '--name')).toThrow(invalid(/^invalid --name "a b"/))
  })

  it("a worker's environment: no pid file of the supervisor's, a drain that ends before the supervisor's kill", () => {
    const settings = { drainTimeout: 30_000, upgradeSignal: 'SIGUSR2' as const }
    const env = workerEnv({ [ENV.pidFile]: '/run/s.pid', PATH: '/bin' }, settings)
    expect(env).toEqual({ PATH: '/bin', [ENV.drainTimeout]: String(30_000 - DEFAULTS.workerDrainMargin), [ENV.upgradeSignal]: 'SIGUSR2' })
    expect(workerEnv({ [ENV.drainTimeout]: '5' }, settings)[ENV.drainTimeout]).toBe('5')
    expect(workerEnv({}, { ...settings, drainTimeout: 500 })[ENV.drainTimeout]).toBe('0')
  })
})

describe('values written as text', () => {
  it('host:port in its forms; :port is every interface', () => {
    expect(hostPortText('--metrics', '127.0.0.1:9090')).toEqual({ host: '127.0.0.1', port: 9090 })
    expect(hostPortText('--metrics', '[::1]:9090')).toEqual({ host: '::1', port: 9090 })
    expect(hostPortText('--probes', 'localhost:0')).toEqual({ host: 'localhost', port: 0 })
    expect(hostPortText('--probes', ':9100')).toEqual({ host: '0.0.0.0', port: 9100 })
    for (const bad of ['9090', 'host', '::1:9090', '[::1]', 'a:b', 'h:65536', 'h:123456', '', 'a b:1', '/x:1']) {
      expect(() => hostPortText('--metrics', bad), bad).toThrow(invalid(/^invalid --metrics/))
    }
  })

  it('sizes as pm2 writes them, in powers of 1024', () => {
    expect(sizeText('--max-rss', '200M')).toBe(200 * 1024 ** 2)
    expect(sizeText('--max-rss', '200m')).toBe(200 * 1024 ** 2)
    expect(sizeText('--max-rss', '1.5G')).toBe(1.5 * 1024 ** 3)
    expect(sizeText('--max-rss', '512K')).toBe(512 * 1024)
    expect(sizeText('--max-rss', '300MB')).toBe(300 * 1024 ** 2)
    expect(sizeText('--max-rss', '500000000')).toBe(500_000_000)
    for (const bad of ['', '0', '0M', '-1M', '200 M', '1T', 'M', '1e9', '200MiBs']) expect(() => sizeText('--max-rss', bad), bad).toThrow(invalid(/^invalid --max-rss/))
  })

  it('words split as a shell splits them, nothing expanded or run', () => {
    expect(wordsText('--node-args', '--import tsx')).toEqual(['--import', 'tsx'])
    expect(wordsText('--node-args', '  --max-old-space-size=512\t--enable-source-maps  ')).toEqual(['--max-old-space-size=512', '--enable-source-maps'])
    expect(wordsText('--node-args', `--import "./my loader.mjs" --title='a "b"' x\\ y`)).toEqual(['--import', './my loader.mjs', '--title=a "b"', 'x y'])
    expect(wordsText('--node-args', '"a \\"q\\" \\$HOME" $HOME `id` ""')).toEqual(['a "q" $HOME', '$HOME', '`id`', ''])
    expect(wordsText('--node-args', '')).toEqual([])
    expect(() => wordsText('--node-args', '--import "tsx')).toThrow(invalid(/^invalid --node-args .*: the " quote is not closed/))
    expect(() => wordsText('--node-args', "it's")).toThrow(invalid(/the ' quote is not closed/))
  })

  it('a choice', () => {
    expect(choiceText('--log-format', 'json', ['text', 'json'])).toBe('json')
    expect(() => choiceText('--log-format', 'xml', ['text', 'json'])).toThrow(invalid(/^invalid --log-format "xml": text or json/))
  })

  it('parseMs takes digits only, within bounds', () => {
    expect(parseMs('250', 1)).toBe(250)
    for (const text of ['', ' 1', '1e3', '0x10', '-1', '1.5', String(MAX_TIMEOUT + 1)]) expect(parseMs(text, 1), text).toBeUndefined()
    expect(parseMs('0', 1)).toBeUndefined()
    expect(parseMs('0', 0)).toBe(0)
  })
})

// The one options module (src/core/options.ts): every default, every
// environment name and every check, in milliseconds, without processes.
import { describe, expect, it } from 'vitest'
import {
  controlSocketPath, DEFAULTS, ENV, listenName, readPreloadSettings, resolveDrainOptions, resolveSupervisorOptions, resolveUpgraderOptions,
  resolveUpgradeOptions, workerEnv, MAX_TIMEOUT,
} from '../../src/core/options.js'
import { parseMs } from '../../src/core/option-values.js'

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
      leaveWindow: DEFAULTS.leaveWindow, leaveWindowSet: false, handOff: true, readyProbe: undefined, probation: 0,
    })
    const s = readPreloadSettings({
      [ENV.pidFile]: '/run/a.pid', [ENV.readyTimeout]: '1500', [ENV.drainTimeout]: '0', [ENV.exitGrace]: '10', [ENV.upgradeSignal]: 'SIGUSR2', [ENV.leaveWindow]: '2000',
    })
    expect(s).toEqual({
      pidFile: '/run/a.pid', readyTimeout: 1500, drainTimeout: 0, exitGrace: 10, upgradeSignal: 'SIGUSR2', leaveWindow: 2000, leaveWindowSet: true, handOff: true,
      readyProbe: undefined, probation: 0,
    })
    expect(readPreloadSettings({ [ENV.readyProbe]: '/healthz', [ENV.probation]: '2000' })).toMatchObject({ readyProbe: '/healthz', probation: 2000 })
    expect(() => readPreloadSettings({ [ENV.readyProbe]: 'healthz' })).toThrow(invalid(/^option HANDOVER_READY_PROBE must be a path such as \/healthz/))
    expect(readPreloadSettings({ [ENV.handOff]: '0' }).handOff).toBe(false)
    expect(() => readPreloadSettings({ [ENV.handOff]: 'maybe' })).toThrow(invalid(/^option HANDOVER_HAND_OFF must be 1 or 0/))
    expect(readPreloadSettings({ [ENV.leaveWindow]: 'off' })).toMatchObject({ leaveWindow: undefined, leaveWindowSet: true })
    expect(() => readPreloadSettings({ [ENV.upgradeSignal]: 'SIGUSR1' })).toThrow(invalid(/^option HANDOVER_UPGRADE_SIGNAL must be one of SIGHUP, SIGUSR2/))
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
    expect(resolveSupervisorOptions({ script: 'a', workers: 'max' }).workers).toBeGreaterThanOrEqual(1)
    for (const workers of [0, 1025, 1.5, '2']) {
      expect(() => resolveSupervisorOptions({ script: 'a', workers } as never), String(workers)).toThrow(invalid(/^option workers must be/))
    }
    expect(() => resolveSupervisorOptions({ script: '' })).toThrow(invalid(/^option script must be/))
    expect(() => resolveSupervisorOptions({ script: 'a', rolling: 'yes' } as never)).toThrow(invalid(/^option rolling must be true or false/))
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
  it('parseMs takes digits only, within bounds', () => {
    expect(parseMs('250', 1)).toBe(250)
    for (const text of ['', ' 1', '1e3', '0x10', '-1', '1.5', String(MAX_TIMEOUT + 1)]) expect(parseMs(text, 1), text).toBeUndefined()
    expect(parseMs('0', 1)).toBeUndefined()
    expect(parseMs('0', 0)).toBe(0)
  })
})

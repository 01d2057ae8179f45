// What `handover run` says when a TypeScript app does not start
// (src/supervisor/node-args.ts), for each Node line, on version strings.
import { describe, expect, it } from 'vitest'
import { HandoverError } from '../../src/core/errors.js'
import { typeScriptHint, typeStripping, typeTransform } from '../../src/supervisor/node-args.js'

const exited = new HandoverError('ERR_CHILD_EXITED', 'worker 1 exited with code 1 before it was ready')

describe('TypeScript hints', () => {
  it('which Node strips types, when asked or by default, and which transforms them', () => {
    expect(['20.19.0', '22.5.1', '22.6.0', '22.17.9', '22.18.0', '23.5.0', '23.6.0', '24.0.0', '26.12.1'].map((v) => typeStripping(v)))
      .toEqual(['none', 'none', 'flag', 'flag', 'default', 'flag', 'default', 'default', 'default'])
    expect(['20.19.0', '22.6.0', '22.7.0', '23.1.0', '24.22.3', '25.0.0', '26.12.1'].map((v) => typeTransform(v))).toEqual([false, false, true, true, true, true, false])
  })

  it('names the flag that runs the app on this Node, and says nothing when a loader is there or the app is not TypeScript', () => {
    expect(typeScriptHint(exited, '/srv/app.ts', [], '20.19.0')).toBe('/srv/app.ts is TypeScript, which Node 20.19.0 cannot run by itself: pass --node-args "--import tsx" (after npm install --save-dev tsx); see docs/typescript.md')
    expect(typeScriptHint(exited, 'app.mts', [], '22.12.0')).toMatch(/^app\.mts is TypeScript: pass --node-args "--experimental-strip-types" \(Node 22\.12\.0 strips types only when asked\), or --node-args "--import tsx"/)
    expect(typeScriptHint(exited, 'app.ts', ['--experimental-strip-types'], '22.12.0')).toMatch(/must be transformed .*pass --node-args "--experimental-transform-types", or --node-args "--import tsx"/)
    expect(typeScriptHint(exited, 'app.ts', [], '24.1.0')).toMatch(/--experimental-transform-types/)
    expect(typeScriptHint(exited, 'app.ts', [], '26.0.0')).toMatch(/must be transformed \(enums, namespaces, parameter properties\), pass --node-args "--import tsx"/)
    expect(typeScriptHint(exited, 'app.ts', [], '26.0.0')).not.toMatch(/transform-types/)
    expect(typeScriptHint(exited, 'app.ts', ['--import', 'tsx'], '20.19.0')).toBeUndefined()
    expect(typeScriptHint(exited, 'app.ts', ['--require', 'ts-node/register'], '20.19.0')).toBeUndefined()
    expect(typeScriptHint(exited, 'app.js', [], '20.19.0')).toBeUndefined()
    expect(typeScriptHint(new HandoverError('ERR_UPGRADE_TIMEOUT', 'slow'), 'app.ts', [], '20.19.0')).toBeUndefined()
  })
})

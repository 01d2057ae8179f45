// Type-level checks: `npm run typecheck` compiles this file, so a wrong type
// fails there (an unused @ts-expect-error is an error too); vitest runs the
// same lines, which keeps them honest at runtime.
import { describe, expect, expectTypeOf, it } from 'vitest'
import { HandoverError, isHandoverError, Upgrader, type DrainHook, type DrainInfo, type DrainOptions, type DrainResult, type HandoverErrorCode } from '../src/index.js'

describe('public types', () => {
  it('isHandoverError() takes handover codes and errno names, and refuses a misspelled handover code', () => {
    const err: unknown = new HandoverError('ERR_CHILD_EXITED', 'x', { pid: 1 })
    expect(isHandoverError(err, 'ERR_CHILD_EXITED')).toBe(true)
    expect(isHandoverError(err, 'EADDRINUSE')).toBe(false)
    const fromConfig: string = 'ERR_TIMEOUT'
    expect(isHandoverError(err, fromConfig)).toBe(false)
    // @ts-expect-error: not a handover code (ERR_CHILD_EXITED is)
    expect(isHandoverError(err, 'ERR_CHILD_EXITD')).toBe(false)
    // @ts-expect-error: a code is a string
    expect(isHandoverError(err, 42)).toBe(false)
    const code: HandoverErrorCode = 'ERR_NATIVE_ADDON'
    expect(isHandoverError(err, code)).toBe(false)
    if (isHandoverError(err, 'ERR_CHILD_EXITED')) expectTypeOf(err.pid).toEqualTypeOf<number | undefined>()
  })

  it('listen() and listenPacket() take a port number as well as an address string', () => {
    expectTypeOf<Upgrader['listen']>().parameter(1).toEqualTypeOf<string | number>()
    expectTypeOf<Upgrader['listenPacket']>().parameter(1).toEqualTypeOf<string | number>()
  })

  it('drain() takes a leaveWindow and reports askedToLeave; an onDrain() hook is told the window, and one without a parameter still fits', () => {
    expectTypeOf<DrainOptions['leaveWindow']>().toEqualTypeOf<number | undefined>()
    expectTypeOf<DrainResult['askedToLeave']>().toEqualTypeOf<number | undefined>()
    expectTypeOf<DrainHook>().parameter(0).toEqualTypeOf<DrainInfo>()
    expectTypeOf<DrainInfo>().toEqualTypeOf<{ leaveWindow: number }>()
    const old: DrainHook = () => {}
    const spreading: DrainHook = ({ leaveWindow }) => void expect(leaveWindow).toBeTypeOf('number')
    spreading({ leaveWindow: 0 })
    expect(old).toBeTypeOf('function')
  })
})

// Type-level checks: `npm run typecheck` compiles this file, so a wrong type
// fails there (an unused @ts-expect-error is an error too); vitest runs the
// same lines, which keeps them honest at runtime.
import { getSystemErrorMap } from 'node:util'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { HandoverError, isHandoverError, Upgrader, type DrainHook, type DrainInfo, type DrainOptions, type DrainResult, type HandoverErrorCode, type KnownErrorCode } from '../src/index.js'
import { SYSTEM_ERROR_CODES } from '../src/core/errors.js'

describe('public types', () => {
  it('isHandoverError() takes handover codes and errno names, and refuses a misspelled handover code', () => {
    const err: unknown = new HandoverError('ERR_CHILD_EXITED', 'x', { pid: 1 })
    expect(isHandoverError(err, 'ERR_CHILD_EXITED')).toBe(true)
    expect(isHandoverError(err, 'EADDRINUSE')).toBe(false)
    const fromConfig: string = 'ERR_TIMEOUT'
    expect(isHandoverError(err, fromConfig)).toBe(false)
    // @ts-expect-error: not a handover code (ERR_CHILD_EXITED is)
    expect(isHandoverError(err, 'ERR_CHILD_EXITD')).toBe(false)
    // @ts-expect-error: neither a handover code nor an errno name (those start with E)
    expect(isHandoverError(err, 'child exited')).toBe(false)
    // Another OS's errno name (Winsock's WSAEDISCON is named EDISCON) is accepted as it is.
    expect(isHandoverError(err, 'EDISCON')).toBe(false)
    const either = Math.random() < 2 ? 'ERR_TIMEOUT' as const : 'ERR_NOPE' as const
    // @ts-expect-error: a union holding one misspelled code
    expect(isHandoverError(err, either)).toBe(false)
    // @ts-expect-error: a code is a string
    expect(isHandoverError(err, 42)).toBe(false)
    const code: HandoverErrorCode = 'ERR_NATIVE_ADDON'
    expect(isHandoverError(err, code)).toBe(false)
    if (isHandoverError(err, 'ERR_CHILD_EXITED')) expectTypeOf(err.pid).toEqualTypeOf<number | undefined>()
  })

  it('the code parameter is a union of the known codes, and a wrong one is named in the compiler\'s message', () => {
    // What editors complete: every handover code and the errno names Node gives (util.getSystemErrorName).
    expectTypeOf<'ERR_CHILD_EXITED'>().toExtend<KnownErrorCode>()
    expectTypeOf<'EADDRINUSE'>().toExtend<KnownErrorCode>()
    expectTypeOf<'ERR_NOPE'>().not.toExtend<KnownErrorCode>()
    // The parameter a wrong code meets is a sentence, which tsc prints in its error:
    // Argument of type '"ERR_NOPE"' is not assignable to parameter of type '"ERR_NOPE is not a handover error code: see HandoverErrorCode"'.
    expectTypeOf<Parameters<typeof isHandoverError<'ERR_NOPE'>>[1]>()
      .toEqualTypeOf<'ERR_NOPE is not a handover error code: see HandoverErrorCode' | undefined>()
    // Every errno name Node has is in the union, on this OS at least.
    const known: KnownErrorCode[] = [...new Set([...getSystemErrorMap().values()].map(([name]) => name as KnownErrorCode))]
    expect(known).toContain('EADDRINUSE')
    expect(known.filter((name) => !SYSTEM_ERROR_CODES.includes(name as never))).toEqual([])
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

import { HandoverError } from './errors.js'

/**
 * The kinds of value options take, checked the same way wherever an option
 * comes from: an API object, an environment variable or a command-line
 * flag. Which option has which kind, name and default is core/options.ts's
 * business; these only say whether a value is one, in ERR_INVALID_OPTION's
 * words.
 */

/** The longest timer Node honours: it clamps longer ones to 1 ms. Every timeout option's upper bound. */
export const MAX_TIMEOUT = 2_147_483_647

export function invalidOption(name: string, value: unknown, expected: string): HandoverError {
  return new HandoverError('ERR_INVALID_OPTION', `option ${name} must be ${expected}, not ${JSON.stringify(value) ?? String(value)}`)
}

export function checkObject(name: string, v: unknown): void {
  if (typeof v !== 'object' || v === null) throw invalidOption(name, v, 'an object')
}

/** A number of ms from `min` to MAX_TIMEOUT; `dflt` if undefined. */
export function msOption(name: string, v: unknown, dflt: number, min: 0 | 1): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !(v >= min && v <= MAX_TIMEOUT)) throw invalidOption(name, v, `a number of ms from ${min} to ${MAX_TIMEOUT}`)
  return v
}

/**
 * A number of ms written as text (an environment variable, a command-line
 * argument): digits only, from `min` to `max`. Undefined if it is not one,
 * for the caller to say so in its own terms.
 */
export function parseMs(text: string, min: number, max = MAX_TIMEOUT): number | undefined {
  const value = Number(text)
  return /^\d+$/.test(text) && value >= min && value <= max ? value : undefined
}

/** parseMs for an option given as text: ERR_INVALID_OPTION naming it when the text is not one. */
export function msText(name: string, text: string, min: 0 | 1, max = MAX_TIMEOUT): number {
  const value = parseMs(text, min, max)
  if (value === undefined) throw invalidOption(name, text, `a number of ms from ${min} to ${max}`)
  return value
}

export function checkSignal(v: unknown): void {
  if (v !== undefined && !(v instanceof AbortSignal)) throw invalidOption('signal', v, 'an AbortSignal')
}

export function checkStrings(name: string, v: unknown): string[] | undefined {
  if (v !== undefined && !(Array.isArray(v) && v.every((a) => typeof a === 'string'))) throw invalidOption(name, v, 'an array of strings')
  return v as string[] | undefined
}

export function nonEmptyString(name: string, v: unknown): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || v === '' || v.includes('\0')) throw invalidOption(name, v, 'a non-empty string')
  return v
}

export function fileMode(name: string, v: unknown, dflt: number): number {
  if (v === undefined || v === null) return dflt
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 0o777) throw invalidOption(name, v, 'a file mode from 0 to 0o777')
  return v as number
}

export function booleanOption(name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt
  if (typeof v !== 'boolean') throw invalidOption(name, v, 'true or false')
  return v
}

export function integerOption(name: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw invalidOption(name, v, `a whole number from ${min} to ${max}`)
  return v as number
}

export function functionOption<F>(name: string, v: F | undefined): F | undefined {
  if (v !== undefined && typeof v !== 'function') throw invalidOption(name, v, 'a function')
  return v
}

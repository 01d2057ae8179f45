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
export function msText(name: string, text: string, min: number, max = MAX_TIMEOUT): number {
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

/** Where a server of handover's own listens (metrics, probes). */
export interface HostPort {
  /** What to bind: an IPv4 or IPv6 address, or a name; '0.0.0.0' for ":port". */
  host: string
  /** 0 lets the system pick (tests). */
  port: number
}

/**
 * "127.0.0.1:9090", "[::1]:9090", "localhost:9090", or ":9090" for every
 * interface (what a Kubernetes probe or a Prometheus in another pod needs;
 * said explicitly, as node_exporter's --web.listen-address does).
 */
export function hostPortText(name: string, text: string): HostPort {
  const bad = (why: string): HandoverError => new HandoverError('ERR_INVALID_OPTION', `invalid ${name} ${JSON.stringify(text.slice(0, 100))}: ${why}; write host:port, [ipv6]:port or :port`)
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s/]*)):(\d{1,5})$/.exec(text)
  if (!m) throw bad('not host:port')
  const port = Number(m[3])
  if (port > 65535) throw bad('the port is over 65535')
  const host = m[1] ?? m[2]
  return { host: host === '' ? '0.0.0.0' : host, port }
}

/** A HostPort given as an object (the API). */
export function hostPortOption(name: string, v: unknown): HostPort | undefined {
  if (v === undefined) return undefined
  const o = v as HostPort
  if (typeof o !== 'object' || o === null || typeof o.host !== 'string' || o.host === '' || !Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw invalidOption(name, v, '{ host, port } with a port from 0 to 65535')
  }
  return { host: o.host, port: o.port }
}

const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }

/**
 * A memory size as pm2's max_memory_restart writes it: bytes, or a number
 * with K, M or G (powers of 1024, as top and `handover status` show
 * memory), e.g. "200M". Bounded by what a Number counts exactly.
 */
export function sizeText(name: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)(?:i?B)?$/i.exec(text)
  const bytes = m ? Math.floor(Number(m[1]) * SIZE_UNITS[m[2].toUpperCase()]) : Number.NaN
  if (!(bytes >= 1 && bytes <= Number.MAX_SAFE_INTEGER)) {
    throw new HandoverError('ERR_INVALID_OPTION', `invalid ${name} ${JSON.stringify(text.slice(0, 100))}: a size such as 200M, 1.5G or 500000000 (bytes)`)
  }
  return bytes
}

/** A whole number of bytes from 1 (the API's form of sizeText). */
export function sizeOption(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw invalidOption(name, v, 'a whole number of bytes, at least 1')
  return v as number
}

/**
 * Words from one string, split as a POSIX shell splits them, but with
 * nothing run or expanded: whitespace separates; '…' keeps everything;
 * "…" keeps everything but lets \ escape " \ $ and `; \ outside quotes
 * escapes the next character. `--node-args "--import tsx"` gives
 * ['--import', 'tsx']. An unclosed quote is ERR_INVALID_OPTION.
 */
export function wordsText(name: string, text: string): string[] {
  const words: string[] = []
  let word: string | undefined
  let quote: '"' | "'" | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quote === "'") {
      if (c === "'") quote = undefined
      else word += c
    } else if (quote === '"') {
      if (c === '"') quote = undefined
      else if (c === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) word += text[++i]
      else word += c
    } else if (c === ' ' || c === '\t' || c === '\n') {
      if (word !== undefined) words.push(word)
      word = undefined
    } else {
      word ??= ''
      if (c === "'" || c === '"') quote = c
      else if (c === '\\') {
        if (i + 1 < text.length) word += text[++i]
      } else word += c
    }
  }
  if (quote !== undefined) throw new HandoverError('ERR_INVALID_OPTION', `invalid ${name} ${JSON.stringify(text.slice(0, 100))}: the ${quote} quote is not closed`)
  if (word !== undefined) words.push(word)
  if (words.some((w) => w.includes('\0'))) throw new HandoverError('ERR_INVALID_OPTION', `invalid ${name}: a NUL character`)
  return words
}

/** One of `choices`, given as text. */
export function choiceText<T extends string>(name: string, text: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text)) throw new HandoverError('ERR_INVALID_OPTION', `invalid ${name} ${JSON.stringify(text.slice(0, 100))}: ${choices.join(' or ')}`)
  return text as T
}

/** Longest service name: with its directory, a socket path must fit 108 bytes. */
export const NAME_MAX = 64

/** Why `name` is not a service name (`handover run --name`, `handover status NAME`), or undefined if it is one. */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'it is empty'
  if (name.length > NAME_MAX) return `it is longer than ${NAME_MAX} characters`
  if (name.includes('/') || name.includes('\\')) return 'it holds a slash'
  if (/^\.+$/.test(name)) return 'it is only dots'
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(name)) return 'use letters, digits, ".", "_" and "-", starting with a letter, a digit or "_"'
  return undefined
}

export function checkName(name: string, option = 'name'): string {
  const problem = nameProblem(name)
  if (problem !== undefined) throw new HandoverError('ERR_INVALID_OPTION', `invalid ${option} ${JSON.stringify(name.slice(0, 100))}: ${problem}`)
  return name
}

/** A fraction from 0 to 1 (an error rate); undefined if absent. */
export function fractionOption(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw invalidOption(name, v, 'a fraction from 0 to 1 (0.05 is 5%)')
  return v
}

/** A ready probe's path: `/` and then printable characters, no space (it goes on a request line as it is). */
export function readyProbePath(name: string, v: unknown): string | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || !/^\/[\x21-\x7e]{0,1999}$/.test(v)) throw invalidOption(name, v, 'a path such as /healthz (printable, no spaces)')
  if (process.platform === 'win32') throw invalidOption(name, v, 'left out on Windows, where a process cannot probe its own server privately')
  return v
}

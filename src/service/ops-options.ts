// The names, defaults and validators of the operating options of
// `handover run` (issue 21) in one place, to move into core/options.ts
// with the rest. Imports nothing from src/ but core/errors.ts.
import { HandoverError } from '../core/errors.js'

export interface HostPort {
  /** What to bind: an IPv4 or IPv6 address, or a name; '0.0.0.0' for ":port". */
  host: string
  /** 0 lets the system pick (tests). */
  port: number
}

export type LogFormat = 'text' | 'json'

/** What `handover run` gains; every field optional, defaults in OPS_DEFAULTS. */
export interface OpsOptions {
  /** The service's name: its control socket is <runtime dir>/<name>.sock. Default: the script's base name. */
  name?: string
  /** Serve Prometheus text at /metrics here. */
  metrics?: HostPort
  /** Serve /livez and /readyz here. */
  probes?: HostPort
  /** Milliseconds between SIGTERM (readyz failing) and the drain. */
  shutdownDelay?: number
  /** Prefix worker output with generation, slot and pid. Default: on when stdout is a TTY. */
  logPrefix?: boolean
  /** The supervisor's own events: text lines or JSON lines. */
  logFormat?: LogFormat
}

export const OPS_DEFAULTS = {
  shutdownDelay: 0,
  logFormat: 'text' as LogFormat,
  /** /livez fails when the supervisor's event loop was stalled this long (ms). */
  livenessThreshold: 2_000,
}

/** Longest service name: with its directory, a socket path must fit 108 bytes. */
export const NAME_MAX = 64
const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/
const MAX_DELAY = 2_147_483_647

/** Why `name` is not a service name, or undefined if it is one. */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'it is empty'
  if (name.length > NAME_MAX) return `it is longer than ${NAME_MAX} characters`
  if (name.includes('/') || name.includes('\\')) return 'it holds a slash'
  if (/^\.+$/.test(name)) return 'it is only dots'
  if (!NAME.test(name)) return 'use letters, digits, ".", "_" and "-", starting with a letter, a digit or "_"'
  return undefined
}

export function checkName(name: string, option = 'name'): string {
  const problem = nameProblem(name)
  if (problem !== undefined) throw new HandoverError('ERR_INVALID_OPTION', `invalid ${option} ${JSON.stringify(name.slice(0, 100))}: ${problem}`)
  return name
}

/**
 * "127.0.0.1:9090", "[::1]:9090", "localhost:9090", or ":9090" for every
 * interface (what a Kubernetes probe or a Prometheus in another pod needs;
 * say so explicitly, as node_exporter's --web.listen-address does).
 */
export function parseHostPort(text: string, option: string): HostPort {
  const bad = (why: string): HandoverError => new HandoverError('ERR_INVALID_OPTION', `invalid ${option} ${JSON.stringify(text.slice(0, 100))}: ${why}; write host:port, [ipv6]:port or :port`)
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s/]*)):(\d{1,5})$/.exec(text)
  if (!m) throw bad('not host:port')
  const port = Number(m[3])
  if (port > 65535) throw bad('the port is over 65535')
  const host = m[1] ?? m[2]
  return { host: host === '' ? '0.0.0.0' : host, port }
}

export function parseDelay(text: string, option: string): number {
  if (!/^\d+$/.test(text) || Number(text) > MAX_DELAY) throw new HandoverError('ERR_INVALID_OPTION', `invalid ${option} ${JSON.stringify(text.slice(0, 100))}: milliseconds from 0 to ${MAX_DELAY}`)
  return Number(text)
}

export function parseLogFormat(text: string, option: string): LogFormat {
  if (text !== 'text' && text !== 'json') throw new HandoverError('ERR_INVALID_OPTION', `invalid ${option} ${JSON.stringify(text.slice(0, 100))}: text or json`)
  return text
}

export function parseSwitch(text: string, option: string): boolean {
  if (['on', 'true', '1', 'yes'].includes(text)) return true
  if (['off', 'false', '0', 'no'].includes(text)) return false
  throw new HandoverError('ERR_INVALID_OPTION', `invalid ${option} ${JSON.stringify(text.slice(0, 100))}: on or off`)
}

interface Flag {
  key: keyof OpsOptions
  /** What the value looks like in the usage; undefined: a switch that takes no value (--log-prefix). */
  value?: string
  help: string
  parse(text: string, flag: string): OpsOptions[keyof OpsOptions]
}

/**
 * The command-line flags, for run-command.ts's parser and its usage text.
 * `--log-prefix` alone is on; `--log-prefix=off` (or `--no-log-prefix`) is off.
 */
export const OPS_FLAGS: Record<string, Flag> = {
  '--name': { key: 'name', value: '<name>', help: 'the control socket is <runtime dir>/<name>.sock (default: the script\'s name)', parse: (t, f) => checkName(t, f) },
  '--metrics': { key: 'metrics', value: '<host:port>', help: 'serve Prometheus metrics at http://<host:port>/metrics (:port for every interface)', parse: parseHostPort },
  '--probes': { key: 'probes', value: '<host:port>', help: 'serve /livez and /readyz for Kubernetes', parse: parseHostPort },
  '--shutdown-delay': { key: 'shutdownDelay', value: '<ms>', help: 'after SIGTERM, fail /readyz and keep serving this long before draining (default 0)', parse: parseDelay },
  '--log-prefix': { key: 'logPrefix', help: 'prefix worker output with [g<generation> w<slot> <pid>] (default: on when stdout is a TTY)', parse: parseSwitch },
  '--log-format': { key: 'logFormat', value: 'text|json', help: 'the supervisor\'s own events as text or JSON lines (default text)', parse: parseLogFormat },
}

/**
 * Parses one flag of OPS_FLAGS; `inline` is the text after `=`, `next` the
 * following argument. Returns how many arguments it used (1 or 2), or 0 if
 * `flag` is not one of these. Throws ERR_INVALID_OPTION.
 */
export function parseOpsFlag(options: OpsOptions, flag: string, inline: string | undefined, next: string | undefined): number {
  if (flag === '--no-log-prefix' && inline === undefined) {
    options.logPrefix = false
    return 1
  }
  const spec = OPS_FLAGS[flag]
  if (spec === undefined) return 0
  if (spec.value === undefined) {
    ;(options as Record<string, unknown>)[spec.key] = inline === undefined ? true : spec.parse(inline, flag)
    return 1
  }
  const text = inline ?? next
  if (text === undefined) throw new HandoverError('ERR_INVALID_OPTION', `${flag} needs a value: ${spec.value}`)
  ;(options as Record<string, unknown>)[spec.key] = spec.parse(text, flag)
  return inline === undefined ? 2 : 1
}

/** The usage lines for these flags, aligned like run-command.ts's. */
export function opsUsage(): string {
  const lines = Object.entries(OPS_FLAGS).map(([flag, spec]) => `  ${`${flag}${spec.value ? ` ${spec.value}` : ''}`.padEnd(26)} ${spec.help}`)
  return lines.join('\n')
}

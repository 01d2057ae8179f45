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

interface Flag {
  key: keyof OpsOptions
  /** What the value looks like in the usage; undefined: a switch that takes no value. */
  value?: string
  help: string
  parse?(text: string, flag: string): OpsOptions[keyof OpsOptions]
}

/** The command-line flags (without their `--`), for the usage and OPS_FLAG_SPEC. */
export const OPS_FLAGS: Record<string, Flag> = {
  name: { key: 'name', value: '<name>', help: 'the control socket is <runtime dir>/<name>.sock (default: the script\'s name)', parse: (t, f) => checkName(t, f) },
  metrics: { key: 'metrics', value: '<host:port>', help: 'serve Prometheus metrics at http://<host:port>/metrics (:port for every interface)', parse: parseHostPort },
  probes: { key: 'probes', value: '<host:port>', help: 'serve /livez and /readyz for Kubernetes', parse: parseHostPort },
  'shutdown-delay': { key: 'shutdownDelay', value: '<ms>', help: 'after SIGTERM, fail /readyz and keep serving this long before draining (default 0)', parse: parseDelay },
  'log-prefix': { key: 'logPrefix', help: 'prefix worker output with [g<generation> w<slot> <pid>] (default: when stdout is a TTY)' },
  'no-log-prefix': { key: 'logPrefix', help: 'never prefix worker output' },
  'log-format': { key: 'logFormat', value: 'text|json', help: 'the supervisor\'s own events as text or JSON lines (default text)', parse: parseLogFormat },
}

/**
 * The same flags in service/args.ts's FlagSpec shape, to spread into
 * run-command.ts's RUN_FLAGS (node:util parseArgs: strings and switches).
 */
export const OPS_FLAG_SPEC: Record<string, { type: 'string' | 'boolean' }> = Object.fromEntries(
  Object.entries(OPS_FLAGS).map(([flag, spec]) => [flag, { type: spec.value === undefined ? 'boolean' : 'string' }]),
)

/**
 * OpsOptions from what parseArgs found for OPS_FLAG_SPEC (other flags are
 * ignored). Throws ERR_INVALID_OPTION naming the flag.
 */
export function opsFromValues(values: Record<string, string | boolean | undefined>): OpsOptions {
  const options: OpsOptions = {}
  if (values['log-prefix'] === true && values['no-log-prefix'] === true) {
    throw new HandoverError('ERR_INVALID_OPTION', 'give --log-prefix or --no-log-prefix, not both')
  }
  for (const [flag, spec] of Object.entries(OPS_FLAGS)) {
    const v = values[flag]
    if (v === undefined || v === false) continue
    if (spec.parse === undefined) {
      ;(options as Record<string, unknown>)[spec.key] = flag === 'log-prefix'
      continue
    }
    ;(options as Record<string, unknown>)[spec.key] = spec.parse(String(v), `--${flag}`)
  }
  return options
}

/** The usage lines for these flags, aligned like run-command.ts's. */
export function opsUsage(): string {
  return Object.entries(OPS_FLAGS).map(([flag, spec]) => `  ${`--${flag}${spec.value ? ` ${spec.value}` : ''}`.padEnd(24)} ${spec.help}`).join('\n')
}

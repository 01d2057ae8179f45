import { parseArgs } from 'node:util'

/** A command line that cannot be understood: the command prints it with its usage and exits 2. */
export class UsageError extends Error {}

/**
 * `dashValue`: a string flag whose value may start with a dash
 * (`--node-args "--import tsx"`), which parseArgs would otherwise take for
 * a forgotten value.
 */
export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string; dashValue?: boolean }>

export interface ParsedCommandLine {
  values: Record<string, string | boolean | undefined>
  positionals: string[]
  /** With `stopAtPositional`: the first positional and everything after it, untouched (a script and its own arguments). */
  rest: string[]
}

/**
 * The one parser of the `handover` command's flags, node:util's parseArgs
 * (strict: an unknown flag is a UsageError). With `stopAtPositional`, flags
 * come first, and the first other word ends them: it and everything after
 * belong to the program being run, as `node` and `handover run` read their
 * command lines. `--` ends the flags too.
 */
export function parseCommandLine(argv: string[], flags: FlagSpec, stopAtPositional = false): ParsedCommandLine {
  let head = argv
  let rest: string[] = []
  if (stopAtPositional) {
    const split = firstPositional(argv, flags)
    head = argv.slice(0, split)
    rest = argv.slice(argv[split] === '--' ? split + 1 : split)
  }
  head = joinDashValues(head, flags)
  try {
    const options = Object.fromEntries(Object.entries(flags).map(([name, { type, short }]) => [name, short === undefined ? { type } : { type, short }]))
    const { values, positionals } = parseArgs({ args: head, options, allowPositionals: !stopAtPositional, strict: true })
    return { values: values as ParsedCommandLine['values'], positionals, rest }
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

/** The index of the first argument that is neither a flag nor a flag's value (or of `--`). */
function firstPositional(argv: string[], flags: FlagSpec): number {
  const takesValue = new Set<string>()
  for (const [name, spec] of Object.entries(flags)) {
    if (spec.type !== 'string') continue
    takesValue.add(`--${name}`)
    if (spec.short) takesValue.add(`-${spec.short}`)
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--' || !arg.startsWith('-') || arg === '-') return i
    // `--name value` and `-n value`; `--name=value` carries its own.
    if (takesValue.has(arg)) i++
  }
  return argv.length
}

/** `--flag value` as `--flag=value` for the flags whose value may start with a dash. */
function joinDashValues(argv: string[], flags: FlagSpec): string[] {
  const dash = new Set(Object.entries(flags).filter(([, spec]) => spec.dashValue).map(([name]) => `--${name}`))
  if (dash.size === 0) return argv
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') {
      out.push(...argv.slice(i))
      break
    }
    if (dash.has(argv[i]) && i + 1 < argv.length) out.push(`${argv[i]}=${argv[++i]}`)
    else out.push(argv[i])
  }
  return out
}

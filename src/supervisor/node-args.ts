// What to tell someone whose TypeScript app did not start under
// `handover run`: Node 20 has no type stripping at all (the worker dies with
// ERR_UNKNOWN_FILE_EXTENSION, or a SyntaxError outside an ES module
// package, and the supervisor only sees it exit), 22.6+
// has it behind --experimental-strip-types, 22.18+ and 23.6+ strip types by
// default but refuse syntax that needs transforming (enums, namespaces,
// parameter properties) unless --experimental-transform-types is given
// (22.7 to 25: Node 26 has no such flag, and only a loader transforms).
import type { HandoverError } from '../core/errors.js'

const TYPESCRIPT = /\.(?:[cm]?ts|tsx)$/i
/** Flags that already bring a TypeScript loader, or Node's transform: the failure is something else. */
const LOADERS = /tsx|ts-node|swc|esbuild|transform-types/i

/** Whether this Node has --experimental-transform-types (22.7 to 25; Node 26 dropped it: only a loader such as tsx transforms). */
export function typeTransform(version = process.versions.node): boolean {
  const [major, minor] = nodeVersion(version)
  return (major === 22 && minor >= 7) || major === 23 || major === 24 || major === 25
}

/** [major, minor] of a `process.versions.node` string. */
function nodeVersion(version: string): [number, number] {
  const [major, minor] = version.split('.').map(Number)
  return [major, minor]
}

/** Whether this Node strips types by default (22.18+, 23.6+), can when asked (22.6+), or cannot at all. */
export function typeStripping(version = process.versions.node): 'default' | 'flag' | 'none' {
  const [major, minor] = nodeVersion(version)
  if (major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18)) return 'default'
  if (major >= 23 || (major === 22 && minor >= 6)) return 'flag'
  return 'none'
}

/**
 * A line saying what to do when the first generation of a TypeScript
 * script exited before it was ready, and nothing in the workers' flags
 * loads TypeScript; undefined otherwise.
 */
export function typeScriptHint(err: HandoverError, script: string, nodeArgs: string[], version = process.versions.node): string | undefined {
  if (err.code !== 'ERR_CHILD_EXITED' || !TYPESCRIPT.test(script) || nodeArgs.some((a) => LOADERS.test(a))) return undefined
  const tsx = '--node-args "--import tsx" (after npm install --save-dev tsx)'
  const stripping = typeStripping(version)
  if (stripping === 'none') return `${script} is TypeScript, which Node ${version} cannot run by itself: pass ${tsx}; see docs/typescript.md`
  if (stripping === 'flag' && !nodeArgs.some((a) => a.includes('strip-types'))) {
    return `${script} is TypeScript: pass --node-args "--experimental-strip-types" (Node ${version} strips types only when asked), or ${tsx}; see docs/typescript.md`
  }
  // Types are stripped: what fails may be syntax that needs transforming.
  const transform = typeTransform(version) ? '--node-args "--experimental-transform-types", or ' : ''
  return `if ${script} failed on TypeScript syntax that must be transformed (enums, namespaces, parameter properties), pass ${transform}${tsx}; see docs/typescript.md`
}

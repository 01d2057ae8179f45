// Where a control socket goes, for `handover run` (supervisor/control-path.ts)
// and handover/register (preload/preload.ts) alike: an explicit path, else
// <runtime dir>/<name>.sock (runtime-dir.ts), where the name is the given
// one or the script's. The socket is bound 0600 by ControlServer.claim,
// which replaces a socket file nobody listens on (left by a SIGKILLed
// server: the addon's bind probes it with a connect) and refuses a live one
// with EADDRINUSE.
//
// An explicit path or name that cannot be had is an error. The default name
// is a guess (two apps may both be server.js), so when another live server
// already answers under it, this one takes <name>-<pid> and says so; and
// when the runtime directory is unsafe, it goes without a control socket
// and says why, rather than refusing to serve the app.
import { HandoverError, isHandoverError } from '../core/errors.js'
import type { SocketTable } from '../core/listeners.js'
import { NAME_MAX } from '../core/options.js'
import { basename, resolve } from 'node:path'
import type { ControlServer } from './control-socket.js'
import { defaultName, socketPathFor } from './runtime-dir.js'

export interface ClaimedControl {
  server: ControlServer
  /** Where it listens (an inherited socket's own path). */
  path: string
  /** Undefined for an explicit path. */
  name?: string
}

export interface ControlClaim {
  /** An explicit path: the socket goes there or nowhere. */
  path?: string
  /** An explicit name: <runtime dir>/<name>.sock or nowhere. */
  name?: string
  /** The app's entry point: the default name is its base name. */
  script: string
  mode: number
  /**
   * The socket-table name it is held under (see ListenOptions.name): a later
   * generation finds the inherited socket by it, whatever path it took.
   */
  tableName?: string
  /** The runtime directory is unsafe: no control socket. */
  noSocket(err: HandoverError): void
  /** Another live server answers under the default name: this one is `name`. */
  renamed(wanted: string, name: string): void
  /** The message for an explicit name another live server answers under. */
  nameTaken(name: string, path: string): string
}

/** Claims the control socket in `table` (before ready()); undefined if the runtime directory is unsafe. */
export async function claimControlSocket(table: SocketTable, c: ControlClaim): Promise<ClaimedControl | undefined> {
  // Loaded only when a control socket is wanted: see platformBackend().
  const { ControlServer } = await import('./control-socket.js')
  const claim = (path: string, name?: string): ClaimedControl => {
    const server = ControlServer.claim(table, path, c.mode, c.tableName)
    // An inherited socket found by its table name keeps the path (and name) it had.
    if (c.tableName !== undefined && server.path !== resolve(path)) return { server, path: server.path, name: inheritedName(server.path) }
    return { server, path, name }
  }
  if (c.path !== undefined) return claim(c.path)
  const explicit = c.name !== undefined
  const name = c.name ?? defaultName(c.script)
  let path: string
  try {
    path = socketPathFor(name)
  } catch (err) {
    if (explicit || !isHandoverError(err, 'ERR_UNSAFE_RUNTIME_DIR')) throw err
    c.noSocket(err)
    return undefined
  }
  try {
    return claim(path, name)
  } catch (err) {
    if (!isHandoverError(err, 'EADDRINUSE')) throw err
    if (explicit) throw new HandoverError('EADDRINUSE', c.nameTaken(name, path), { address: path, cause: err })
  }
  const suffix = `-${process.pid}`
  const unique = `${name.slice(0, NAME_MAX - suffix.length)}${suffix}`
  c.renamed(name, unique)
  return claim(socketPathFor(unique), unique)
}

/** The name of a socket at <dir>/<name>.sock; undefined for another path. */
function inheritedName(path: string): string | undefined {
  return path.endsWith('.sock') ? basename(path, '.sock') : undefined
}

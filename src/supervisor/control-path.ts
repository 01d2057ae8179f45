// Where `handover run`'s control socket goes. It always opens one:
// --control-socket PATH, else <runtime dir>/<name>.sock (service/runtime-dir.ts),
// where the name is --name or the script's. The socket is bound 0600 by
// ControlServer.claim, which replaces a socket file nobody listens on (left
// by a SIGKILLed supervisor: the addon's bind probes it with a connect) and
// refuses a live one with EADDRINUSE.
//
// An explicit path or name that cannot be had fails the start. The default
// name is a guess (two apps may both be server.js), so when another live
// supervisor already answers under it, this one takes <name>-<pid> and says
// so; and when the runtime directory is unsafe, it runs without a control
// socket and says why, rather than refusing to serve the app.
import { HandoverError, isHandoverError } from '../core/errors.js'
import type { SocketTable } from '../core/listeners.js'
import { NAME_MAX, type SupervisorSettings } from '../core/options.js'
import type { ControlServer } from '../service/control-socket.js'
import { defaultName, socketPathFor } from '../service/runtime-dir.js'
import { events, type SupervisorEvents } from './events.js'

export interface ClaimedControl {
  server: ControlServer
  path: string
  /** Undefined for an explicit --control-socket path. */
  name?: string
}

export async function claimControlSocket(o: SupervisorSettings, table: SocketTable, log: SupervisorEvents): Promise<ClaimedControl | undefined> {
  const { ControlServer } = await import('../service/control-socket.js')
  const claim = (path: string): ControlServer => ControlServer.claim(table, path, o.controlSocketMode)
  if (o.controlSocket !== undefined) return { server: claim(o.controlSocket), path: o.controlSocket }
  const explicit = o.name !== undefined
  const name = o.name ?? defaultName(o.script)
  let path: string
  try {
    path = socketPathFor(name)
  } catch (err) {
    if (explicit || !isHandoverError(err, 'ERR_UNSAFE_RUNTIME_DIR')) throw err
    log.emit(events.noControlSocket(err))
    return undefined
  }
  try {
    return { server: claim(path), path, name }
  } catch (err) {
    if (!isHandoverError(err, 'EADDRINUSE')) throw err
    if (explicit) {
      throw new HandoverError('EADDRINUSE', `another handover run already answers as ${name} (${path}): give this one another --name`, { address: path, cause: err })
    }
  }
  const suffix = `-${process.pid}`
  const unique = `${name.slice(0, NAME_MAX - suffix.length)}${suffix}`
  log.emit(events.controlSocketRenamed(name, unique))
  const other = socketPathFor(unique)
  return { server: claim(other), path: other, name: unique }
}

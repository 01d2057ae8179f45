// Where `handover run`'s control socket goes. It always opens one:
// --control-socket PATH, else <runtime dir>/<name>.sock, where the name is
// --name or the script's; the rules, shared with handover/register, are in
// service/control-claim.ts. An explicit path or name that cannot be had
// fails the start; a default name already taken becomes <name>-<pid>; an
// unsafe runtime directory means no control socket, said as an event.
import type { SocketTable } from '../core/listeners.js'
import type { SupervisorSettings } from '../core/options.js'
import { claimControlSocket as claim, type ClaimedControl } from '../service/control-claim.js'
import { events, type SupervisorEvents } from './events.js'

export type { ClaimedControl } from '../service/control-claim.js'

export function claimControlSocket(o: SupervisorSettings, table: SocketTable, log: SupervisorEvents): Promise<ClaimedControl | undefined> {
  return claim(table, {
    path: o.controlSocket,
    name: o.name,
    script: o.script,
    mode: o.controlSocketMode,
    noSocket: (err) => log.emit(events.noControlSocket(err)),
    renamed: (wanted, name) => log.emit(events.controlSocketRenamed(wanted, name)),
    nameTaken: (name, path) => `another handover run already answers as ${name} (${path}): give this one another --name`,
  })
}

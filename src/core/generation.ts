import { createRequire } from 'node:module'
import { ActivatedSockets } from '../service/activation.js'
import { platformBackend } from '../backend/index.js'
import type { PlatformBackend } from '../backend/types.js'
import { HandoverError } from './errors.js'
import { ParentLink } from './parent-link.js'
import { inheritedControlFd, inheritedSupervisorFd } from './protocol.js'
import type { SupervisorLink } from '../supervisor/worker-link.js'

/**
 * What this process inherited: the platform backend, the link to the parent
 * generation (if it was started by an upgrade) and systemd's activated
 * sockets. It can be opened once per process, since opening it consumes the
 * parent's hello and the inherited fds, and it belongs to one Upgrader.
 *
 * Split from Upgrader.create() so that handover/register can open it ahead of
 * the application (the async part: the parent's hello) and still let an app
 * that calls Upgrader.create() itself take it over.
 */
export interface Generation {
  backend: PlatformBackend
  parent?: ParentLink
  activated?: ActivatedSockets
  /** Set when `handover run` started this process as one of its workers. */
  supervisor?: SupervisorLink
}

let opening: Promise<Generation> | undefined
let claimedBy: string | undefined

/** Starts opening the generation, once; later calls share the first one's outcome. */
export function openGeneration(parentTimeout: number): Promise<Generation> {
  opening ??= (async () => {
    const backend = await platformBackend()
    const controlFd = inheritedControlFd()
    const supervisorFd = inheritedSupervisorFd()
    const parent = controlFd === undefined ? undefined : await ParentLink.connect(backend, controlFd, parentTimeout)
    // Socket activation is for the process the service manager started, never a later generation.
    const activated = controlFd === undefined ? ActivatedSockets.take(backend) : undefined
    // Loaded only in `handover run`'s workers: see platformBackend().
    const supervisor = supervisorFd === undefined ? undefined : new (await import('../supervisor/worker-link.js')).SupervisorLink(backend, supervisorFd)
    return { backend, parent, activated, supervisor }
  })()
  return opening
}

/**
 * Marks the generation as owned by `owner`; throws ERR_ALREADY_CREATED if
 * something else owns it. Even a failed create() keeps its claim: a retry
 * could only misread fds the application has reused since.
 */
export function claimGeneration(owner: string): void {
  if (claimedBy !== undefined) {
    throw new HandoverError('ERR_ALREADY_CREATED', `${owner} was called, but ${claimedBy} already owns this process's sockets`)
  }
  claimedBy = owner
}

/** Who owns the generation, if anyone: `Upgrader.create()` or `handover/register`. */
export function generationOwner(): string | undefined {
  return claimedBy
}

/**
 * True in a node:cluster worker, where the primary owns the sockets and
 * handover must stay out (see `handover run`). A worker always has an IPC
 * channel, so node:cluster is loaded only in a process that has one: most
 * servers never pay for the import.
 */
export function inClusterWorker(): boolean {
  return typeof process.send === 'function' && (createRequire(import.meta.url)('node:cluster') as { isWorker: boolean }).isWorker
}

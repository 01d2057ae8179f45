import { createRequire } from 'node:module'
import { ActivatedSockets } from './activation.js'
import { HandoverError } from './errors.js'
import { inherited } from './inherited-env.js'
import { ENV } from './options.js'
import { connectParent, type Parent } from './parent.js'
import type { PlatformBackend } from './platform.js'

/**
 * What this process inherited: the platform backend, its parent (the
 * previous generation or the supervisor) if handover started it, and the
 * service manager's activated sockets. It can be opened once per process,
 * since opening it consumes the parent's hello and the inherited fds, and
 * it belongs to one Upgrader.
 *
 * Separate from Upgrader.create() so that handover/register can open it
 * ahead of the application (the async part: the parent's hello) and still
 * let an app that calls Upgrader.create() itself take it over.
 */
export interface Inheritance {
  backend: PlatformBackend
  parent?: Parent
  activated?: ActivatedSockets
}

let opening: Promise<Inheritance> | undefined
let claimedBy: string | undefined

/**
 * Starts opening the inheritance, once; later calls share the first one's
 * outcome. `backend` is the platform's (backend/index.ts loads it).
 */
export function openInheritance(backend: Promise<PlatformBackend>, parentTimeout: number): Promise<Inheritance> {
  opening ??= (async () => {
    const channelFd = inheritedFd(ENV.channel, inherited.channel)
    // The request channel means something only beside a channel to the parent.
    const requestFd = channelFd === undefined ? undefined : inheritedFd(ENV.supervisor, inherited.supervisor)
    const platform = await backend
    const parent = channelFd === undefined ? undefined : await connectParent(platform, channelFd, requestFd, parentTimeout)
    // Socket activation is for the process the service manager started, never a later generation.
    const activated = channelFd === undefined ? ActivatedSockets.take(platform) : undefined
    return { backend: platform, parent, activated }
  })()
  return opening
}

/** An fd number an environment variable names, from 3 up; ERR_BAD_INHERITANCE if it names none. */
function inheritedFd(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d{1,4}$/.test(value) || Number(value) < 3) {
    throw new HandoverError('ERR_BAD_INHERITANCE', `${name}=${JSON.stringify(value.slice(0, 40))} is not a channel fd`)
  }
  return Number(value)
}

/**
 * Marks the inheritance as owned by `owner`; throws ERR_ALREADY_CREATED if
 * something else owns it. Even a failed create() keeps its claim: a retry
 * could only misread fds the application has reused since.
 */
export function claimInheritance(owner: string): void {
  if (claimedBy !== undefined) {
    throw new HandoverError('ERR_ALREADY_CREATED', `${owner} was called, but ${claimedBy} already owns this process's sockets`)
  }
  claimedBy = owner
}

/** Who owns the inheritance, if anyone: `Upgrader.create()` or `handover/register`. */
export function inheritanceOwner(): string | undefined {
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

import { createRequire } from 'node:module'

/**
 * What handover/register in a worker_thread and in the main thread say to
 * each other, over a BroadcastChannel (one per process: it reaches every
 * thread). A thread asks before a server of its listens on a fixed address,
 * since that socket cannot be handed over (see threads.ts).
 */
export const THREAD_CHANNEL = 'handover/register worker threads 1'

export type FromThread =
  /** The thread's first server: the main thread waits for it to drain at the end. */
  | { type: 'hello'; thread: number }
  /** May this server listen on `what` (a fixed address)? */
  | { type: 'listen'; thread: number; id: number; what: string }
  | { type: 'listening'; thread: number; id: number }
  /** It failed to listen, or it has closed. */
  | { type: 'closed'; thread: number; id: number }
  | { type: 'drained'; thread: number }

export type ToThread =
  | { type: 'verdict'; thread: number; id: number; ok: boolean; code?: string; message?: string }
  | { type: 'drain'; timeout: number }

/**
 * True in a worker_thread. process.chdir is Node's stub there (it throws
 * ERR_WORKER_UNSUPPORTED_OPERATION and is marked `disabled`, in Node 20 to
 * 26): a test that costs nothing in the main thread, where loading
 * node:worker_threads would add milliseconds to every generation's start.
 * Where the stub is found, isMainThread has the last word.
 */
export function inWorkerThread(): boolean {
  if ((process.chdir as { disabled?: boolean }).disabled !== true) return false
  return !(createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads')).isMainThread
}

/** A message of `types` from the channel, or undefined for anything else. */
export function readMessage<T extends { type: string }>(data: unknown, types: ReadonlyArray<T['type']>): T | undefined {
  const m = data as { type?: unknown; thread?: unknown } | null
  return typeof m === 'object' && m !== null && types.includes(m.type as T['type']) ? (m as T) : undefined
}

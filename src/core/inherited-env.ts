import { ENV } from './options.js'

/**
 * The environment variables that describe this process alone, read once and
 * removed from process.env when handover is first imported: they name fds
 * of this process, or a service manager that accepts messages from one pid
 * only, so in any process the application spawns later they could only
 * mislead (Go's grace leaked LISTEN_FDS to grandchildren this way). Only
 * handover's own next generation gets what it needs, set afresh.
 */
export interface InheritedEnv {
  /** HANDOVER_CONTROL: the channel to the parent, if a handover process started this one. */
  channel?: string
  /** HANDOVER_SUPERVISOR: set for a worker of `handover run`. */
  supervisor?: string
  /** systemd's socket activation (sd_listen_fds(3)). */
  listenPid?: string
  listenFds?: string
  listenFdNames?: string
  /** NOTIFY_SOCKET: where the service manager listens (sd_notify(3)). */
  notifySocket?: string
}

/** systemd's variable names. */
export const NOTIFY_SOCKET = 'NOTIFY_SOCKET'
const LISTEN = { pid: 'LISTEN_PID', fds: 'LISTEN_FDS', names: 'LISTEN_FDNAMES' } as const

function take(name: string): string | undefined {
  const value = process.env[name]
  delete process.env[name]
  return value
}

export const inherited: Readonly<InheritedEnv> = Object.freeze({
  channel: take(ENV.channel),
  supervisor: take(ENV.supervisor),
  listenPid: take(LISTEN.pid),
  listenFds: take(LISTEN.fds),
  listenFdNames: take(LISTEN.names),
  notifySocket: take(NOTIFY_SOCKET) || undefined,
})

// Node read NODE_COMPILE_CACHE when this process started; the app's own
// child processes (a build step, a `node` script) should not write their
// code into handover's cache, so what handover added goes too.
const compileCacheMarker = take(ENV.compileCacheMarker)
if (compileCacheMarker !== undefined && process.env.NODE_COMPILE_CACHE === compileCacheMarker) delete process.env.NODE_COMPILE_CACHE

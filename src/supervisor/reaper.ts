import { readdirSync, readFileSync } from 'node:fs'
import { posixAddon } from '../backend/addon.js'

/**
 * Reaping as PID 1. Orphans in the container are re-parented to us, and
 * their zombies stay until we wait for them. Node cannot waitpid(-1): that
 * would also reap libuv's own children (the workers) and steal the exit
 * status libuv is waiting for. So on each SIGCHLD (and every second, since
 * signals coalesce) this lists the zombies whose parent is us in /proc,
 * skips the pids the supervisor spawned (libuv reaps those by pid), and
 * reaps the rest with one waitpid(pid, WNOHANG) each, which cannot touch
 * any other process.
 */
export function startReaper(isOurs: (pid: number) => boolean = isNodeChild): { stop(): void } {
  const addon = posixAddon()
  const sweep = (): void => {
    for (const pid of zombieChildren()) {
      if (!isOurs(pid)) addon.reapPid(pid)
    }
  }
  process.on('SIGCHLD', sweep)
  const timer = setInterval(sweep, 1_000).unref()
  return {
    stop() {
      process.off('SIGCHLD', sweep)
      clearInterval(timer)
    },
  }
}

/** Zombies whose parent is this process, from /proc/<pid>/stat (state Z, ppid = us). */
function zombieChildren(): number[] {
  const out: number[] = []
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return out
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (fields[0] === 'Z' && Number(fields[1]) === process.pid) out.push(Number(name))
    } catch {
      // Gone already.
    }
  }
  return out
}

const spawned = new Set<number>()

/** The supervisor registers each worker it spawns, so the reaper leaves them to libuv. */
export function markNodeChild(pid: number, alive: Promise<unknown>): void {
  spawned.add(pid)
  void alive.then(() => spawned.delete(pid))
}

function isNodeChild(pid: number): boolean {
  return spawned.has(pid)
}

// Linux only: a process's open fds, read from /proc.
import { readdirSync, readlinkSync } from 'node:fs'

/** The targets of a process's open fds, e.g. `socket:[1234]`. */
function openFds(pid: number): string[] {
  const dir = `/proc/${pid}/fd`
  return readdirSync(dir).map((fd) => {
    try {
      return `${fd} -> ${readlinkSync(`${dir}/${fd}`)}`
    } catch {
      return `${fd} -> ?`
    }
  })
}

/** The fd count once it holds still: a hand-off closes a few fds asynchronously. */
export async function settledFdCount(pid: number): Promise<number> {
  let last = -1
  for (let i = 0; i < 50; i++) {
    const now = openFds(pid).length
    if (now === last) return now
    last = now
    await new Promise((r) => setTimeout(r, 50))
  }
  return last
}

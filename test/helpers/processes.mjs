// @ts-check
// Shared by the vitest suite and the Windows lane (plain JavaScript: the
// lane runs it under `wine node.exe` 20 and later, which cannot load
// TypeScript). Only Node's own modules.
import { readdirSync, readFileSync } from 'node:fs'

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Polls `check` until it holds; rejects after `timeoutMs`, naming `what`.
 * @param {() => boolean | Promise<boolean>} check
 * @param {number} timeoutMs
 * @param {string} what
 * @returns {Promise<void>}
 */
export async function waitUntil(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}

/**
 * Whether a process of this machine runs (inside Wine: a Windows process).
 * On Linux, alive while any of its threads is: PID 1 here does not always
 * reap re-parented children, and a killed multi-threaded process shows its
 * leader as a zombie while other threads, which still hold the fd table and
 * so the listening sockets, are exiting.
 * @param {number} pid
 * @returns {boolean}
 */
export function isAlive(pid) {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  return process.platform === 'linux' ? hasLiveThread(pid) : true
}

/** @param {number} pid */
function hasLiveThread(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).some((tid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
        return !'ZX'.includes(stat.slice(stat.lastIndexOf(')') + 2)[0])
      } catch {
        return false
      }
    })
  } catch {
    return false
  }
}

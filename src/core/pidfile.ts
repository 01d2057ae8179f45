import { closeSync, constants, openSync, readFileSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { dirname, basename, join } from 'node:path'
import { systemError } from './errors.js'

/**
 * Writes the pid atomically: readers see the old pid or the new one, never a
 * torn file. The temp file gets a random name and is created with O_EXCL and
 * O_NOFOLLOW: in a directory others can write to (/tmp), a name derived from
 * the pid could be planted in advance, as a directory (the write fails) or as
 * a symlink (the write would overwrite its target).
 *
 * A new generation writes it in ready(), on the upgrade's critical path: a
 * few synchronous calls on a small local file cost less than four trips
 * through the thread pool, and /dev/urandom less than the Web Crypto global,
 * whose first use loads a dozen of Node's internal modules.
 */
export async function writePidFile(path: string, pid = process.pid): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomHex()}.tmp`)
  let created = false
  try {
    const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644)
    created = true
    try {
      writeSync(fd, `${pid}\n`)
    } finally {
      closeSync(fd)
    }
    renameSync(temp, path)
  } catch (err) {
    // Only a file this call created is removed: an EEXIST temp is someone else's.
    if (created) {
      try {
        unlinkSync(temp)
      } catch {
        // Gone already.
      }
    }
    const e = err as NodeJS.ErrnoException
    throw systemError({ errno: -(e.errno ?? 0), syscall: e.syscall ?? 'write', message: e.message }, `pid file ${path} (temp file ${temp})`)
  }
}

/** 8 random bytes as hex: from /dev/urandom, or (Windows) Web Crypto's global; not node:crypto, which every generation would load. */
function randomHex(): string {
  const bytes = Buffer.alloc(8)
  try {
    const fd = openSync('/dev/urandom', 'r')
    try {
      if (readSync(fd, bytes) === bytes.length) return bytes.toString('hex')
    } finally {
      closeSync(fd)
    }
  } catch {
    // No /dev/urandom.
  }
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(8))).toString('hex')
}

/** Removes the pid file if it still names `pid` (by default this process); a successor's stays. */
export function removeOwnPidFile(path: string, pid = process.pid): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(pid)) unlinkSync(path)
  } catch {
    // Missing or unreadable: nothing of ours to remove.
  }
}

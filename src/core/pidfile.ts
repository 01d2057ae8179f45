import { constants, readFileSync, unlinkSync } from 'node:fs'
import { open, rename, unlink } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { systemError } from './errors.js'

/**
 * Writes the pid atomically: readers see the old pid or the new one, never a
 * torn file. The temp file gets a random name and is created with O_EXCL and
 * O_NOFOLLOW: in a directory others can write to (/tmp), a name derived from
 * the pid could be planted in advance, as a directory (the write fails) or as
 * a symlink (the write would overwrite its target).
 */
export async function writePidFile(path: string, pid = process.pid): Promise<void> {
  // Web Crypto's global, not node:crypto: importing that would load it in every generation.
  const random = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(8))).toString('hex')
  const temp = join(dirname(path), `.${basename(path)}.${random}.tmp`)
  let created = false
  try {
    const file = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644)
    created = true
    try {
      await file.writeFile(`${pid}\n`)
    } finally {
      await file.close()
    }
    await rename(temp, path)
  } catch (err) {
    // Only a file this call created is removed: an EEXIST temp is someone else's.
    if (created) await unlink(temp).catch(() => {})
    const e = err as NodeJS.ErrnoException
    throw systemError({ errno: -(e.errno ?? 0), syscall: e.syscall ?? 'write', message: e.message }, `pid file ${path} (temp file ${temp})`)
  }
}

/** Removes the pid file if it still names `pid` (by default this process); a successor's stays. */
export function removeOwnPidFile(path: string, pid = process.pid): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(pid)) unlinkSync(path)
  } catch {
    // Missing or unreadable: nothing of ours to remove.
  }
}

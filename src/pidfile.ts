import { readFileSync, unlinkSync } from 'node:fs'
import { rename, unlink, writeFile } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { systemError } from './errors.js'

/** Writes the pid atomically: readers see the old pid or the new one, never a torn file. */
export async function writePidFile(path: string, pid = process.pid): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${pid}.tmp`)
  try {
    await writeFile(temp, `${pid}\n`, { mode: 0o644 })
    await rename(temp, path)
  } catch (err) {
    await unlink(temp).catch(() => {})
    const e = err as NodeJS.ErrnoException
    throw systemError({ errno: -(e.errno ?? 0), syscall: e.syscall ?? 'write', message: e.message }, `pid file ${path}`)
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

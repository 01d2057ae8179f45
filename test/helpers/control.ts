import { execFile } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

export const CLI = fileURLToPath(new URL('../../dist/bin.js', import.meta.url))

export interface CliResult {
  status: number
  answer: Record<string, unknown> | undefined
  stderr: string
  /** Milliseconds from start to exit. */
  elapsed: number
}

/** Runs the `handover` command as a user would (no shell, real exit status); killed after `killAfter` ms (status -1). */
export function cli(...args: string[]): Promise<CliResult> {
  return cliWithin(60_000, ...args)
}

export function cliWithin(killAfter: number, ...args: string[]): Promise<CliResult> {
  const started = Date.now()
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: killAfter }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : -1) : 0
      const line = stdout.split('\n')[0]
      resolve({ status, answer: line ? (JSON.parse(line) as Record<string, unknown>) : undefined, stderr, elapsed: Date.now() - started })
    })
  })
}

/** One raw exchange on the control socket; `end` half-closes after writing, as `nc -N` does. */
export function raw(path: string, text: string, end = false): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let data = ''
    const socket = net.connect(path, () => {
      socket.write(text)
      if (end) socket.end()
    })
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => (data += chunk))
    socket.on('end', () => {
      socket.destroy()
      resolve(JSON.parse(data.split('\n')[0]) as Record<string, unknown>)
    })
    socket.on('error', reject)
  })
}

#!/usr/bin/env node
// The `handover` command: asks a running server, through its control socket
// (the controlSocket option), to upgrade, and exits non-zero if the upgrade
// failed. That makes it a reload command that reports its result, e.g.
// systemd's ExecReload=.
import net from 'node:net'
import { parseArgs } from 'node:util'

const USAGE = `usage: handover upgrade --socket PATH [--timeout MS]
       handover status --socket PATH

  upgrade    start the next generation; succeed once it serves
  status     the pid of the generation answering on the socket

  -s, --socket PATH   the server's controlSocket
  -t, --timeout MS    upgrade: kill the new process if it is not ready in time
                      (the server's upgradeTimeout applies as well)

Prints the server's JSON answer. Exit status: 0 ok, 1 failed (the error code
is in the answer and on stderr), 2 usage error.`

interface Answer {
  ok: boolean
  code?: string
  message?: string
  [field: string]: unknown
}

/** What the server may need after the deadline to kill and reap the new process, in ms. */
const ANSWER_GRACE = 5_000

function usage(problem: string): never {
  process.stderr.write(`handover: ${problem}\n${USAGE}\n`)
  process.exit(2)
}

function parseAnswer(text: string, path: string): Answer {
  try {
    const value = JSON.parse(text) as Answer
    if (typeof value === 'object' && value !== null && typeof value.ok === 'boolean') return value
  } catch {
    // Reported below.
  }
  return { ok: false, code: 'ERR_PROTOCOL', message: `${path} answered something that is not a handover answer: ${JSON.stringify(text.slice(0, 120))}` }
}

function connectError(err: NodeJS.ErrnoException, path: string): Answer {
  const code = err.code ?? 'ERR_CONNECT'
  const why = code === 'ENOENT' ? 'no such socket: is the server running with the controlSocket option?'
    : code === 'ECONNREFUSED' ? 'nothing is accepting on it: the server is not running'
    : code === 'EACCES' ? 'permission denied: run as the user the server runs as'
    : err.message
  return { ok: false, code, message: `cannot reach ${path}: ${why}` }
}

/** Sends one command line and resolves with the one answer line. */
function request(path: string, line: string, waitMs: number | undefined): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = net.connect(path)
    let buffer = ''
    let timer: NodeJS.Timeout | undefined
    const finish = (answer: Answer): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(answer)
    }
    if (waitMs !== undefined) {
      timer = setTimeout(() => finish({ ok: false, code: 'ERR_TIMEOUT', message: `no answer from ${path} within ${waitMs} ms` }), waitMs)
    }
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write(`${line}\n`))
    socket.on('data', (chunk: string) => {
      buffer += chunk
      const newline = buffer.indexOf('\n')
      if (newline !== -1) finish(parseAnswer(buffer.slice(0, newline), path))
    })
    socket.on('end', () => {
      finish(buffer === ''
        ? { ok: false, code: 'ERR_PROTOCOL', message: `${path} closed the connection without an answer` }
        : parseAnswer(buffer, path))
    })
    socket.on('error', (err) => finish(connectError(err, path)))
  })
}

async function main(): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        socket: { type: 'string', short: 's' },
        timeout: { type: 'string', short: 't' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    usage((err as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const [command, ...extra] = positionals
  if (command !== 'upgrade' && command !== 'status') usage(command === undefined ? 'no command' : `unknown command ${JSON.stringify(command)}`)
  if (extra.length > 0) usage(`unexpected argument ${JSON.stringify(extra[0])}`)
  if (values.socket === undefined || values.socket === '') usage('--socket PATH is required')
  let line: string = command
  let waitMs: number | undefined
  if (values.timeout !== undefined) {
    if (command !== 'upgrade') usage('--timeout applies to upgrade only')
    const ms = Number(values.timeout)
    if (!/^\d+$/.test(values.timeout) || ms < 1 || ms > 2_147_483_647 - ANSWER_GRACE) usage(`--timeout takes milliseconds, not ${JSON.stringify(values.timeout)}`)
    line = `upgrade ${ms}`
    waitMs = ms + ANSWER_GRACE
  }
  const answer = await request(values.socket, line, waitMs)
  process.stdout.write(`${JSON.stringify(answer)}\n`)
  if (answer.ok) return 0
  process.stderr.write(`handover: ${command} failed: ${answer.code}: ${answer.message}\n`)
  return 1
}

process.exitCode = await main()

// Every `handover run` opens a control socket in $XDG_RUNTIME_DIR/handover
// (or <tmp>/handover-<uid>). Each test file gets a private XDG_RUNTIME_DIR,
// inherited by every process it starts and removed after it: files running
// in parallel never find each other's sockets (`handover status` without a
// name), and a supervisor a test SIGKILLs leaves no socket file behind.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'

const dir = mkdtempSync(join(tmpdir(), 'handover-xdg-'))
process.env.XDG_RUNTIME_DIR = dir
afterAll(() => rmSync(dir, { recursive: true, force: true }))

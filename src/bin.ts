#!/usr/bin/env node
// The `handover` command. `handover run` is the supervisor, with its own
// flags and signals (supervisor/run-command.ts); every other command is a
// client of a running server's control socket (service/cli.ts). Each is
// loaded only when asked for: the client never loads the supervisor.
const [command, ...rest] = process.argv.slice(2)
process.exitCode = command === 'run'
  ? await (await import('./supervisor/run-command.js')).runCommand(rest)
  : await (await import('./service/cli.js')).clientCommand(process.argv.slice(2))

// One upgrade driven to its end: SIGHUP to the current generation, then wait
// for its upgrade() to settle and, if it succeeded, for its successor to see
// it exit. Returns the server's 'upgrade' or 'upgrade-failed' event.
import { waitFor } from './proc.mjs'

export async function upgradeOnce(server) {
  const pid = server.currentPid()
  process.kill(pid, 'SIGHUP')
  const outcome = await waitFor(`the upgrade of ${pid}`, () =>
    server.events().find((e) => (e.event === 'upgrade' || e.event === 'upgrade-failed') && e.pid === pid), 30_000)
  if (outcome.event === 'upgrade') {
    await waitFor(`${pid} to be gone`, () => server.events('gone').some((e) => e.old === pid), 35_000)
  }
  return outcome
}

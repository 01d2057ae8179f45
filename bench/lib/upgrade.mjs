// One upgrade driven to its end: SIGHUP to the current generation (or to the
// `handover run` supervisor, whose pid stays), then wait for its upgrade()
// to settle and, if it succeeded, for the old process(es) to be seen gone.
// Returns the server's 'upgrade' or 'upgrade-failed' event.
import { waitFor } from './proc.mjs'

export async function upgradeOnce(server) {
  const pid = server.currentPid()
  // A stable pid emits many 'upgrade' events: only the ones after this signal count.
  const seen = server.events().length
  process.kill(pid, 'SIGHUP')
  const outcome = await waitFor(`the upgrade of ${pid}`, () =>
    server.events().slice(seen).find((e) => (e.event === 'upgrade' || e.event === 'upgrade-failed') && e.pid === pid), 30_000)
  if (outcome.event === 'upgrade') {
    // The supervisor names the old generation by its first worker's pid (`from`).
    const old = outcome.from ?? pid
    await waitFor(`${old} to be gone`, () => server.events('gone').some((e) => e.old === old), 35_000)
  }
  return outcome
}

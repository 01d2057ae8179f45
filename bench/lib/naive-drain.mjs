// The control experiment behind `--drain naive`: what an application
// typically does without handover's drain(). Node's close() keeps serving
// busy keep-alive sockets, so after a grace period it destroys whatever is
// left, in the middle of the clients' next requests. The bench must count
// those losses; if it reports 0 here, the bench is broken.
export function naiveDrain(server, { grace = 500 } = {}) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), grace)
    server.close(() => {
      clearTimeout(timer)
      resolve({ graceful: -1, forced: -1 })
    })
  })
}

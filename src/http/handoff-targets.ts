import type { Server } from 'node:net'

/**
 * Where drain() hands a server's idle HTTP/1 connections: the next
 * generation, or (in a worker of `handover run`) the supervisor, which
 * passes them to a worker of the generation that serves now. Whoever knows
 * the successor registers a resolver; drain() asks it about each server.
 */
export interface HandOffTarget {
  /**
   * Sends a detached connection's fd. Resolves true once the other side
   * adopted it (the caller then lets its own handle go), false if it did
   * not (the caller takes the connection back and serves it on).
   */
  send(fd: number): Promise<boolean>
  /** Sends not answered yet: a sender keeps this bounded, since each holds an fd. */
  readonly inFlight: number
}

type Resolver = (server: Server) => HandOffTarget | undefined

const resolvers = new Set<Resolver>()

/** Registers where connections of some servers go; returns a function that unregisters it. */
export function registerHandOffTargets(resolve: Resolver): () => void {
  resolvers.add(resolve)
  return () => void resolvers.delete(resolve)
}

/** Where this server's idle connections can go now, if anywhere. */
export function handOffTargetFor(server: Server): HandOffTarget | undefined {
  for (const resolve of resolvers) {
    const target = resolve(server)
    if (target) return target
  }
  return undefined
}

// ws 8 behind handover/register, with the one onDrain() line in the app:
// clients that reconnect on close all end up on the newest generation, and
// none of them sees an abnormal close (1006).
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { freePort } from './helpers/clients.mjs'
import { waitUntil } from './helpers/processes.mjs'
import { killPreloadApps, PreloadApp } from './helpers/preload-app.js'

afterEach(killPreloadApps)

const CLIENTS = 20

class ReconnectingClient {
  pid = 0
  readonly closeCodes: number[] = []
  readonly errors: string[] = []
  private socket?: WebSocket
  private running = true

  constructor(private readonly port: number) {
    this.connect()
  }

  private connect(): void {
    const socket = (this.socket = new WebSocket(`ws://127.0.0.1:${this.port}`))
    socket.on('message', (data) => (this.pid = Number(String(data))))
    socket.on('error', (err: NodeJS.ErrnoException) => this.errors.push(err.code ?? err.message))
    socket.on('close', (code) => {
      this.closeCodes.push(code)
      if (this.running) setImmediate(() => this.connect())
    })
  }

  close(): void {
    this.running = false
    this.socket?.close(1000)
  }
}

describe('ws with onDrain()', () => {
  it(`${CLIENTS} reconnecting clients follow 3 upgrades with 1012 closes only`, async () => {
    const port = await freePort()
    const app = await PreloadApp.start('ws.mjs', { PORT: String(port) })
    const clients = Array.from({ length: CLIENTS }, () => new ReconnectingClient(port))
    await waitUntil(() => clients.every((c) => c.pid === app.current), 10_000, 'every client on the first pid')
    for (let i = 0; i < 3; i++) {
      await app.upgrade()
      await waitUntil(() => clients.every((c) => c.pid === app.current), 10_000, `every client on pid ${app.current}`)
    }
    for (const c of clients) c.close()
    const codes = clients.flatMap((c) => c.closeCodes)
    expect(clients.flatMap((c) => c.errors)).toEqual([])
    // Each client was told "service restart" once per upgrade, then closed itself (1000) or saw its close echoed (1005).
    expect(codes.filter((code) => code === 1012)).toHaveLength(3 * CLIENTS)
    expect(codes).not.toContain(1006)
  })
})

// An app with an onDrain() hook owns its long-lived connections: drain()
// asks none of them to leave, and the hook is told the (clamped) window so
// it can spread its own closes. Hooks are process-wide and announced once,
// at the first drain(), so this file runs in a process of its own.
import http from 'node:http'
import net from 'node:net'
import { expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { drain, onDrain, type DrainInfo } from '../dist/index.js'

it('with a hook, drain({ leaveWindow }) leaves WebSockets to the app; the hook gets the clamped window', async () => {
  const told: DrainInfo[] = []
  onDrain((info) => void told.push(info))
  const server = http.createServer()
  new WebSocketServer({ server })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`)
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)))
  await new Promise((resolve) => ws.on('open', resolve))
  // This hook closes nothing: the connection stays to the deadline, as the app wants it.
  const result = await drain(server, { leaveWindow: 5_000, timeout: 800 })
  expect(told).toEqual([{ leaveWindow: 600 }])
  expect(result).toEqual({ graceful: 0, forced: 1, askedToLeave: 0 })
  expect(await closed).toBe(1006)
  // A hook registered after draining started runs at once, with the same window.
  const late = await new Promise<DrainInfo>((resolve) => onDrain(resolve))
  expect(late).toEqual({ leaveWindow: 600 })
})

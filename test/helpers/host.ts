import net from 'node:net'
import { posixAddon } from '../../src/backend/addon.js'

/** Whether this host can bind IPv6 loopback (containers often cannot). */
export const hasIPv6: boolean = (() => {
  try {
    const fd = posixAddon().bindInet(1, 6, '::1', 0, true, 1)
    new net.Socket({ fd }).destroy()
    return true
  } catch {
    return false
  }
})()

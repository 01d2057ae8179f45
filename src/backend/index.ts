import { HandoverError } from '../errors.js'
import { PosixBackend } from './posix.js'
import type { PlatformBackend } from './types.js'

export type * from './types.js'

let backend: PlatformBackend | undefined

export function platformBackend(): PlatformBackend {
  if (backend === undefined) {
    if (process.platform === 'win32') {
      throw new HandoverError('ERR_UNSUPPORTED', 'handover does not support Windows yet')
    }
    backend = new PosixBackend()
  }
  return backend
}

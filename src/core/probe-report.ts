import { HandoverError } from './errors.js'

/** How one ready probe went (api/ready-probe.ts), as a new process reports a failed one to its parent. */
export interface ProbeOutcome {
  ok: boolean
  /** The HTTP status, if an answer came. */
  status?: number
  /** The start of the answer's body, for the error message. */
  body?: string
  /** Why no answer came. */
  error?: string
}

/** ERR_NOT_HEALTHY: the ready probe never got a 2xx; with the last status and body, or why nothing answered. */
export function notHealthy(path: string, last: ProbeOutcome, timeout: number, who = 'the ready probe'): HandoverError {
  const said = last.status !== undefined
    ? `its last answer was ${last.status}${last.body ? `: ${JSON.stringify(last.body)}` : ''}`
    : `no answer: ${last.error ?? 'unknown'}`
  return new HandoverError('ERR_NOT_HEALTHY', `${who} GET ${path} did not get a 2xx within ${timeout} ms; ${said}`)
}

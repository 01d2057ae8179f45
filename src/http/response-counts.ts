import { subscribe } from 'node:diagnostics_channel'

/**
 * The HTTP responses this process's servers have finished, and how many of
 * them were server errors (5xx), counted through Node's public
 * `http.server.response.finish` diagnostics channel, not by wrapping the
 * app: what `handover run --max-error-rate` compares between a new
 * generation and the old one. Subscribed on first use, so a process that
 * never asks pays nothing.
 */
export const responseCounts = { responses: 0, serverErrors: 0 }

let counting = false

export function countResponses(): typeof responseCounts {
  if (!counting) {
    counting = true
    subscribe('http.server.response.finish', (message) => {
      const status = (message as { response?: { statusCode?: number } }).response?.statusCode ?? 0
      responseCounts.responses++
      if (status >= 500 && status <= 599) responseCounts.serverErrors++
    })
  }
  return responseCounts
}

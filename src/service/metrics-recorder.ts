// What the supervisor records, and the recorder it holds when metrics are
// off. Apart from metrics.ts so that the supervisor can hold noMetrics
// without loading the HTTP server or prom-client.
import type { ReplaceReason } from '../core/options.js'

export type UpgradeResult = 'success' | 'failure'
/** Why a worker was replaced outside an upgrade. */
export type RestartReason = ReplaceReason
/** graceful: it exited by itself within the drain timeout; forced: it was killed at the timeout. */
export type DrainOutcome = 'graceful' | 'forced'

/** One worker's figures, from the supervisor's periodic sample. Absent figures leave no series. */
export interface WorkerSample {
  slot: number
  generation: number
  pid: number
  /** Bytes. */
  rss?: number
  /** Percent of one CPU over the last sample (100: one CPU). */
  cpu?: number
  /** Seconds: how late the worker's event loop answered the supervisor's last ping. */
  eventLoopDelay?: number
}

/** What the supervisor records. Every method is cheap and never throws. */
export interface MetricsRecorder {
  recordUpgrade(result: UpgradeResult, seconds: number): void
  setWorkers(count: number): void
  recordWorkerRestart(reason: RestartReason): void
  recordDrain(seconds: number, outcome: DrainOutcome): void
  addConnectionsHandedOver(count: number): void
  addConnectionsClosed(count: number): void
  /** Replaces the per-worker gauges: workers not listed (exited) lose their series. */
  setWorkerSamples(samples: WorkerSample[]): void
}

/** The recorder when metrics are off. */
export const noMetrics: MetricsRecorder = Object.freeze({
  recordUpgrade() {},
  setWorkers() {},
  recordWorkerRestart() {},
  recordDrain() {},
  addConnectionsHandedOver() {},
  addConnectionsClosed() {},
  setWorkerSamples() {},
})

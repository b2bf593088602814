export interface StoreBenchRow {
  /** memory | redis */
  readonly store: string;
  readonly operation: string;
  /** claims awaited concurrently by one client (one ioredis connection) */
  readonly inFlight: number;
  /** wall-clock rate */
  readonly opsPerSec: number;
  /** the client process's CPU (user + system) per operation: what the filter pays */
  readonly cpuMicrosPerOp: number;
  /** set when an answer was not what the run expects (the row is then a failure) */
  readonly error?: string;
}

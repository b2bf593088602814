// How every protocol bench measures an operation beside its primitives, in one place.

const MEASURE_MS = 1000;
const SLICES = 40;
const BATCH = 5;
const WARM_UP_CALLS = 300;

export type SyncOp = () => unknown;
export type AsyncOp = () => Promise<unknown>;

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * Operations per CPU-second of `operation` and of `primitives`, measured in alternating short slices
 * (~MEASURE_MS in all) so both see the same machine, cache and clock state; each figure is the
 * median of its per-slice rates. CPU time (process.cpuUsage, all of the process's threads: it counts
 * WebCrypto work on libuv's pool too), not wall time: time spent descheduled on a shared machine is
 * charged to neither, and a burst of load moves the medians little. An async operation is awaited
 * one call at a time.
 */
export async function opsPerSecPair(operation: SyncOp | AsyncOp, primitives: SyncOp, operationIsAsync = false): Promise<[number, number]> {
  for (let i = 0; i < WARM_UP_CALLS; i++) {
    if (operationIsAsync) await operation();
    else operation();
    primitives();
  }
  const rates: [number[], number[]] = [[], []];
  const sliceNs = BigInt(Math.round((MEASURE_MS / 2 / SLICES) * 1e6));
  for (let slice = 0; slice < SLICES; slice++) {
    for (const [index, fn] of [operation, primitives].entries()) {
      const awaited = index === 0 && operationIsAsync;
      let ops = 0;
      const start = process.hrtime.bigint();
      const cpuStart = process.cpuUsage();
      while (process.hrtime.bigint() - start < sliceNs) {
        for (let i = 0; i < BATCH; i++) {
          if (awaited) await fn();
          else fn();
        }
        ops += BATCH;
      }
      const cpu = process.cpuUsage(cpuStart);
      rates[index as 0 | 1].push(ops / ((cpu.user + cpu.system) / 1e6));
    }
  }
  return [median(rates[0]), median(rates[1])];
}

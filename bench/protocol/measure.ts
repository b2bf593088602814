// How every protocol bench measures an operation beside its primitives, in one place.

// Slices long enough to hold many scavenges of each side. With 40 slices of 12.5 ms, measured here
// on e2ee, a scavenge fell mostly in the side that allocates more JS objects, and it then also
// swept the other side's dead native handles (KeyObjects, ciphers: each one's weak callback runs
// in the scavenge that finds it dead): the operation was charged for part of its primitives'
// garbage (1 KiB e2ee: 1.40× in 12.5 ms slices, 1.29–1.32× in 250 ms slices, same code; run
// apart, each in its own process, 1.30–1.32×). 200 ms slices hold ~5–12 scavenges a side.
const SLICE_MS = 200;
const SLICES = 6;
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
 * Operations per CPU-second of `operation` and of `primitives`, measured in alternating slices
 * (SLICES of SLICE_MS each a side) so both see the same machine, cache and clock state, and each
 * pays for collecting its own garbage; each figure is the median of its per-slice rates. CPU time (process.cpuUsage, all of the process's threads: it counts
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
  const sliceNs = BigInt(Math.round(SLICE_MS * 1e6));
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

// How every protocol bench measures an operation beside its primitives, in one place.

// Each side runs in slices that settle before they are timed, so each pays for its own garbage and
// its own heap sizing. Measured here on e2ee, same code:
//  - 40 slices of 12.5 ms: a scavenge fell mostly in the side allocating more JS objects, and it
//    also ran the weak callbacks of the other side's dead KeyObjects and ciphers: 1 KiB read 1.40×;
//  - 6 slices of 200 ms, timed from the switch: 1 KiB 1.27–1.30×, but 16 KiB 1.29–1.38×, its
//    operation ~6 µs slower than when run alone: V8 had sized the young generation for the other
//    side's allocation rate;
//  - settled first (SETTLE_MS untimed, then MEASURE_MS timed): 16 KiB 1.21–1.22×, 1 KiB 1.26–1.30×,
//    as each side run alone in a process of its own reads (1.21–1.22× and 1.26×).
const SETTLE_MS = 150;
const MEASURE_MS = 400;
const SLICES = 4;
const BATCH = 5;
const WARM_UP_CALLS = 300;

export type SyncOp = () => unknown;
export type AsyncOp = () => Promise<unknown>;

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Runs `fn` for `ms` of wall time; answers its calls per CPU-second. */
async function rate(fn: SyncOp | AsyncOp, awaited: boolean, ms: number): Promise<number> {
  const sliceNs = BigInt(Math.round(ms * 1e6));
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
  return ops / ((cpu.user + cpu.system) / 1e6);
}

/**
 * Operations per CPU-second of `operation` and of `primitives`, measured in alternating slices
 * (SLICES a side, each SETTLE_MS untimed and then MEASURE_MS timed) so both see the same machine,
 * cache and clock state and each pays for its own garbage; each figure is the median of its
 * per-slice rates. CPU time (process.cpuUsage, all of the process's threads: it counts WebCrypto
 * work on libuv's pool too), not wall time: time spent descheduled on a shared machine is charged to
 * neither, and a burst of load moves the medians little. An async operation is awaited one call at
 * a time.
 */
export async function opsPerSecPair(operation: SyncOp | AsyncOp, primitives: SyncOp, operationIsAsync = false): Promise<[number, number]> {
  for (let i = 0; i < WARM_UP_CALLS; i++) {
    if (operationIsAsync) await operation();
    else operation();
    primitives();
  }
  const rates: [number[], number[]] = [[], []];
  for (let slice = 0; slice < SLICES; slice++) {
    for (const [index, fn] of [operation, primitives].entries()) {
      const awaited = index === 0 && operationIsAsync;
      await rate(fn, awaited, SETTLE_MS);
      rates[index as 0 | 1].push(await rate(fn, awaited, MEASURE_MS));
    }
  }
  return [median(rates[0]), median(rates[1])];
}

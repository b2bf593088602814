// The protocol benchmarks in a process of their own, started by bench/run.ts pinned to one core
// (taskset): a fresh heap, not the one the ext_proc runs grew, and no other thread of the runner on
// that core. Prints the results as one JSON line on stdout.
import { runProtocolBenches } from './index.js';

const only = process.argv.slice(2);
const results = await runProtocolBenches(only.length > 0 ? only : undefined);
process.stdout.write(`${JSON.stringify(results)}\n`);

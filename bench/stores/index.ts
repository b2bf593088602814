// Runs bench/stores/child.ts pinned to core 1 (redis-server on core 0) and prints its table.
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { hasCommand } from '../target.js';
import { table } from '../table.js';
import type { StoreBenchRow } from './types.js';

export interface StoreBenchResult {
  readonly status: 'ok' | 'failed';
  readonly rows: readonly StoreBenchRow[];
  readonly notes: readonly string[];
  readonly error?: string;
}

export function runStoreBenchesPinned(nodeFlags: readonly string[]): StoreBenchResult {
  const child = fileURLToPath(new URL(`./child${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
  const pin = hasCommand('taskset', ['-c', '1', 'true']) && cpus().length >= 2;
  const node = [process.execPath, ...process.execArgv, ...nodeFlags, child];
  const command = pin ? ['taskset', '-c', '1', ...node] : node;
  console.log(`  (${pin ? 'client process pinned to core 1' : 'not pinned: taskset or a second core unavailable'})`);
  const run = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    if (run.status !== 0) throw new Error(`exit status ${String(run.status)}${run.signal === null ? '' : `, signal ${run.signal}`}`);
    const parsed = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as { rows: StoreBenchRow[]; notes: string[] };
    const failed = parsed.rows.some((r) => r.error !== undefined);
    return { status: failed ? 'failed' : 'ok', rows: parsed.rows, notes: parsed.notes };
  } catch (error) {
    return { status: 'failed', rows: [], notes: [], error: `store bench child: ${error instanceof Error ? error.message : String(error)}` };
  }
}

export function storesTable(result: StoreBenchResult): string {
  const lines = [
    table(
      ['store', 'operation', 'in flight', 'ops/s', 'client CPU µs/op'],
      result.rows.map((r) => [r.store, r.error === undefined ? r.operation : `${r.operation} FAILED: ${r.error}`, String(r.inFlight), r.opsPerSec, r.cpuMicrosPerOp]),
    ),
  ];
  for (const note of result.notes) lines.push(`  ${note}`);
  if (result.error !== undefined) lines.push(`  FAILED: ${result.error}`);
  lines.push('  ops/s: wall clock, one client connection; CPU µs/op: the client process (the gatehouse side), user + system.');
  return lines.join('\n');
}

// The protocol benchmarks: each bench/protocol/*.bench.ts module that exists (they are written
// separately) is imported, run one after another, and its rows printed beside the cost of the
// node:crypto primitives the operation cannot avoid. The goal: no operation costs more than 1.3×
// its primitives.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { table } from '../table.js';
import type { ProtocolBenchRow } from './types.js';

export const OVERHEAD_GOAL = 1.3;

export const PROTOCOL_MODULES = ['signing', 'e2ee', 'passport'] as const;

export interface ProtocolModuleResult {
  module: string;
  status: 'ok' | 'missing' | 'failed';
  error?: string;
  /** withinGoal is null for an informational row (shown for context, not held to the goal) */
  rows: (ProtocolBenchRow & { withinGoal: boolean | null })[];
}

function isRow(x: unknown): x is ProtocolBenchRow {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  const p = r['primitive'] as Record<string, unknown> | null | undefined;
  return typeof r['operation'] === 'string' && typeof r['opsPerSec'] === 'number' && typeof r['overheadRatio'] === 'number'
    && typeof p === 'object' && p !== null && typeof p['description'] === 'string' && typeof p['opsPerSec'] === 'number'
    && (r['informational'] === undefined || typeof r['informational'] === 'string');
}

/** Checks what a module's default export returned and marks each row against the goal. */
export function toModuleResult(name: string, rows: unknown): ProtocolModuleResult {
  if (!Array.isArray(rows) || !rows.every(isRow)) return { module: name, status: 'failed', error: 'did not return ProtocolBenchRow[]', rows: [] };
  return { module: name, status: 'ok', rows: rows.map((r) => ({ ...r, withinGoal: r.informational === undefined ? r.overheadRatio <= OVERHEAD_GOAL : null })) };
}

async function runOne(name: string): Promise<ProtocolModuleResult> {
  const url = new URL(`./${name}.bench.js`, import.meta.url);
  // compiled: the .js; from source under tsx: the .ts, imported by its .js name
  const present = existsSync(fileURLToPath(url)) || existsSync(fileURLToPath(new URL(`./${name}.bench.ts`, import.meta.url)));
  if (!present) return { module: name, status: 'missing', rows: [] };
  try {
    const mod: unknown = await import(url.href);
    const bench = (mod as { default?: unknown } | null)?.default;
    if (typeof bench !== 'function') throw new Error('no default export function');
    return toModuleResult(name, await (bench as () => Promise<unknown>)());
  } catch (err) {
    return { module: name, status: 'failed', error: err instanceof Error ? err.message : String(err), rows: [] };
  }
}

export async function runProtocolBenches(only?: readonly string[]): Promise<ProtocolModuleResult[]> {
  const results: ProtocolModuleResult[] = [];
  for (const name of PROTOCOL_MODULES) {
    if (only !== undefined && !only.includes(name)) continue;
    results.push(await runOne(name)); // one at a time: they measure on one core
  }
  return results;
}

export function protocolTable(results: readonly ProtocolModuleResult[]): string {
  const rows = results.flatMap((m) => m.rows.map((r) => [
    m.module, r.operation, r.opsPerSec, r.primitive.description, r.primitive.opsPerSec,
    `${r.overheadRatio.toFixed(2)}×`, r.withinGoal === null ? 'info*' : r.withinGoal ? 'yes' : 'NO',
  ]));
  const informational = results.flatMap((m) => m.rows.filter((r) => r.informational !== undefined).map((r) => `  * ${m.module}, ${r.operation}: not held to the goal: ${r.informational ?? ''}`));
  const notes = results.filter((m) => m.status !== 'ok').map((m) =>
    m.status === 'missing' ? `  ${m.module}: no ${m.module}.bench.js yet, skipped` : `  ${m.module}: FAILED: ${m.error ?? ''}`);
  const body = rows.length > 0
    ? table(['module', 'operation', 'ops/s', 'primitive', 'primitive ops/s', 'overhead', `≤ ${OVERHEAD_GOAL}×`], rows)
    : '  (no protocol benchmark rows)';
  const after = [...informational, ...notes];
  return after.length > 0 ? `${body}\n${after.join('\n')}` : body;
}

// The store benchmarks in a process of their own, pinned by bench/run.ts to core 1, with
// redis-server (started here) pinned to core 0: what a nonce claim costs the gatehouse process (its
// CPU per claim) and how many claims one client connection carries, serially and with claims in
// flight as a busy gatehouse has them. Prints one JSON line on stdout.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { StoresConfig } from '../../src/config/types.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import { createMemoryStores, openStores } from '../../src/stores/index.js';
import type { Stores } from '../../src/stores/types.js';
import { REDIS_SERVER, TestRedisServer } from '../../test/support/redis.js';
import type { StoreBenchRow } from './types.js';

const MEASURE_MS = 1_000;
const WARM_UP_MS = 300;
/**
 * Short, so the memory store sweeps as it goes and stays under its capacity (DEFAULTS.maxMemoryNonces,
 * 1,000,000 live nonces): at ~500k claims/s a 2 s TTL filled it and the store rightly answered
 * `capacity`. Every claim uses a fresh nonce, so an expiry during the run changes no answer.
 */
const NONCE_TTL_MS = 500;
const IN_FLIGHT = [1, 16, 64] as const;

let sequence = 0;

/** `inFlight` loops claiming fresh nonces for `ms`; every answer must be a first use */
async function claimLoop(stores: Stores, inFlight: number, ms: number): Promise<{ claims: number; failures: number; wallSec: number; cpuSec: number }> {
  let claims = 0;
  let failures = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const deadline = start + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const result = await stores.nonces.claim('bench-device', `bench-nonce-${sequence++}`, NONCE_TTL_MS);
      if (result.ok && result.firstUse) claims++;
      else failures++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const cpu = process.cpuUsage(cpuStart);
  return { claims, failures, wallSec: (performance.now() - start) / 1000, cpuSec: (cpu.user + cpu.system) / 1e6 };
}

async function measureClaims(kind: string, stores: Stores, expectFailures = false): Promise<StoreBenchRow[]> {
  const rows: StoreBenchRow[] = [];
  for (const inFlight of IN_FLIGHT) {
    await claimLoop(stores, inFlight, WARM_UP_MS);
    const r = await claimLoop(stores, inFlight, MEASURE_MS);
    const ops = r.claims + r.failures;
    const wrong = expectFailures ? r.claims : r.failures;
    rows.push({
      store: kind,
      operation: expectFailures ? 'nonce claim, Redis stopped' : 'nonce claim',
      inFlight,
      opsPerSec: ops / r.wallSec,
      cpuMicrosPerOp: (r.cpuSec / ops) * 1e6,
      ...(wrong > 0 ? { error: `${wrong} of ${ops} answers were ${expectFailures ? 'first uses' : 'not first uses'}` } : {}),
    });
  }
  return rows;
}

function config(port: number): StoresConfig {
  return {
    kind: 'redis',
    keyPrefix: 'bench:',
    maxMemoryNonces: DEFAULTS.maxMemoryNonces,
    deviceCache: DEFAULTS.deviceCache,
    accountCache: DEFAULTS.accountCache,
    redis: { mode: 'standalone', host: '127.0.0.1', port, db: 0, commandTimeoutMs: DEFAULTS.commandTimeoutMs, connectTimeoutMs: DEFAULTS.connectTimeoutMs },
  };
}

export async function runStoreBenches(): Promise<{ rows: StoreBenchRow[]; notes: string[] }> {
  const notes: string[] = [];
  const rows = await measureClaims('memory', createMemoryStores());
  if (!existsSync(REDIS_SERVER)) {
    notes.push(`${REDIS_SERVER} not installed: Redis rows skipped`);
    return { rows, notes };
  }
  const server = await TestRedisServer.start();
  const pinned = server.pid !== undefined && spawnSync('taskset', ['-p', '-c', '0', String(server.pid)], { stdio: 'ignore' }).status === 0;
  notes.push(pinned ? 'redis-server pinned to core 0' : 'redis-server not pinned (taskset failed)');
  const { stores, connectError } = await openStores(config(server.port));
  try {
    if (connectError !== undefined) throw new Error(`redis: ${connectError}`);
    rows.push(...(await measureClaims('redis', stores)));
    await server.stop();
    rows.push(...(await measureClaims('redis', stores, true)).filter((r) => r.inFlight === 1));
  } finally {
    await stores.close();
    await server.close();
  }
  return { rows, notes };
}

const results = await runStoreBenches();
process.stdout.write(`${JSON.stringify(results)}\n`);

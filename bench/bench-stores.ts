// What the bench routes on Redis share: a redis-server for the run, pinned off gatehouse's core, and
// the device enrolled through the very stores the route's gatehouse will read.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { StoresConfig } from '../src/config/types.js';
import type { EnrolledDevice } from '../src/protocol/signing/enrollment.js';
import { openStores } from '../src/stores/index.js';
import type { DeviceRegistry } from '../src/stores/types.js';
import { REDIS_SERVER, TestRedisServer } from '../test/support/redis.js';

/** A redis-server on a free port, pinned to `cpu` when given; undefined when redis-server is not installed. */
export async function startBenchRedis(cpu?: string): Promise<TestRedisServer | undefined> {
  if (!existsSync(REDIS_SERVER)) return undefined;
  const redis = await TestRedisServer.start();
  if (cpu !== undefined && redis.pid !== undefined) spawnSync('taskset', ['-p', '-c', cpu, String(redis.pid)], { stdio: 'ignore' });
  return redis;
}

/** Enrolls `device` in `devices` (a process's own registry, e.g. hot-path's memory store). */
export async function enroll(devices: DeviceRegistry, device: EnrolledDevice): Promise<void> {
  const stored = await devices.put(device);
  if (!stored.ok) throw new Error(`enrolling the bench device: ${stored.detail}`);
}

/** Enrolls `device` through the stores a config names, as the gatehouse started on it will read them. */
export async function enrollThroughStores(stores: StoresConfig, device: EnrolledDevice): Promise<void> {
  const opened = await openStores(stores);
  try {
    if (opened.connectError !== undefined) throw new Error(`redis: ${opened.connectError}`);
    await enroll(opened.stores.devices, device);
  } finally {
    await opened.stores.close();
  }
}

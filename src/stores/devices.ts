// Enrolled devices: the record enrollment yields, with its keys parsed once (signing KeyObject, e2ee
// DeviceKey) and kept that way, so a request's lookup neither re-parses nor misses e2ee's static-DH
// cache (keyed by the DeviceKey object).
import { deviceKeyFromRaw } from '../protocol/e2ee/envelope.js';
import type { EnrolledDevice } from '../protocol/signing/enrollment.js';
import { importPublicJwk } from '../protocol/signing/keys.js';
import { isIntegrityLevel } from '../protocol/signing/profile.js';
import type { KeyLayout } from './keys.js';
import { LocalCache, type LocalCacheOptions } from './local-cache.js';
import type { StoreMetrics } from './metrics.js';
import type { RedisConnection } from './redis.js';
import { storeFailure, type DeviceLookup, type DeviceRegistry, type StoreChange, type StoredDevice, type StoreFailure, type StoreWrite } from './types.js';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const sameJwk = (a: EnrolledDevice['publicJwk'], b: EnrolledDevice['publicJwk']): boolean => JSON.stringify(a) === JSON.stringify(b);
const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean => a !== undefined && b !== undefined && Buffer.compare(a, b) === 0;

/**
 * The device with its keys parsed; `corrupt` when the record does not hold together (its key is not
 * its id, ...). `previous`: an earlier parse of this device; a key whose bytes are unchanged is
 * taken from it, not parsed again, so e2ee's static-DH cache (keyed by the DeviceKey object) keeps
 * its secret across the re-reads of the record that the cache TTL makes (~35 µs a DH, ~5 µs a parse).
 */
export function parseDevice(device: EnrolledDevice, revokedAt: number | undefined, previous?: StoredDevice): StoredDevice | StoreFailure {
  const reusable = previous !== undefined && previous.device.deviceId === device.deviceId && previous.device.algorithm === device.algorithm && sameJwk(previous.device.publicJwk, device.publicJwk);
  const signingKey = reusable ? previous.signingKey : importPublicJwk(device.publicJwk);
  if (signingKey === undefined) return storeFailure('corrupt', `device ${device.deviceId}: publicJwk is not an allowed public key`);
  if (signingKey.thumbprint !== device.deviceId) return storeFailure('corrupt', `device ${device.deviceId}: publicJwk's thumbprint is not the device id`);
  if (signingKey.algorithm !== device.algorithm) return storeFailure('corrupt', `device ${device.deviceId}: algorithm does not match publicJwk`);
  let e2eeKey;
  if (previous?.e2eeKey !== undefined && sameBytes(previous.device.e2eePublicKey, device.e2eePublicKey)) {
    e2eeKey = previous.e2eeKey;
  } else if (device.e2eePublicKey !== undefined) {
    try {
      e2eeKey = deviceKeyFromRaw(device.e2eePublicKey);
    } catch (err) {
      return storeFailure('corrupt', `device ${device.deviceId}: e2ee key: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { device, signingKey, ...(e2eeKey === undefined ? {} : { e2eeKey }), ...(revokedAt === undefined ? {} : { revokedAt }) };
}

/** JSON of the record; the e2ee key as base64url */
export function serializeDevice(device: EnrolledDevice): string {
  const { e2eePublicKey, ...rest } = device;
  return JSON.stringify({ ...rest, ...(e2eePublicKey === undefined ? {} : { e2eePublicKey: Buffer.from(e2eePublicKey).toString('base64url') }) });
}

/** The inverse of serializeDevice, checking every field's type; undefined when it does not parse. */
export function deserializeDevice(text: string): EnrolledDevice | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  const { deviceId, publicJwk, algorithm, e2eePublicKey, integrityLevel, appId, subject, enrolledAt } = value;
  if (typeof deviceId !== 'string' || !isRecord(publicJwk) || typeof algorithm !== 'string' || !isIntegrityLevel(integrityLevel)) return undefined;
  if (typeof appId !== 'string' || typeof subject !== 'string' || typeof enrolledAt !== 'number') return undefined;
  if (e2eePublicKey !== undefined && typeof e2eePublicKey !== 'string') return undefined;
  // algorithm and publicJwk are checked against each other by parseDevice (importPublicJwk)
  return {
    deviceId,
    publicJwk: publicJwk as unknown as EnrolledDevice['publicJwk'],
    algorithm: algorithm as EnrolledDevice['algorithm'],
    ...(e2eePublicKey === undefined ? {} : { e2eePublicKey: new Uint8Array(Buffer.from(e2eePublicKey, 'base64url')) }),
    integrityLevel,
    appId,
    subject,
    enrolledAt,
  };
}

// Revocation sticks to the key: put writes only the record field, so re-enrolling a revoked key keeps
// revokedAt. Revoking an unknown device creates nothing (the script checks first); revoking a revoked
// one again keeps the first revokedAt (HSET), as the memory registry does: revoke is idempotent.
const REVOKE_SCRIPT = "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSETNX', KEYS[1], 'revokedAt', ARGV[1]) return 1 end return 0";

/** A Redis hash per device (`record`: JSON, `revokedAt`: ms), read through a bounded local cache of parsed records. */
export class RedisDeviceRegistry implements DeviceRegistry {
  private readonly cache: LocalCache<StoredDevice>;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: KeyLayout,
    cache: LocalCacheOptions,
    now: () => number = Date.now,
  ) {
    this.cache = new LocalCache(cache, now);
  }

  async put(device: EnrolledDevice): Promise<StoreWrite> {
    const parsed = parseDevice(device, undefined);
    if ('reason' in parsed) {
      this.redis.metrics.count('devices', 'put', 'invalid');
      return storeFailure('invalid', parsed.detail);
    }
    const key = this.keys.device(device.deviceId);
    const text = serializeDevice(device);
    this.cache.delete(device.deviceId);
    const answer = await this.redis.call('devices', 'put', (client) => client.hset(key, 'record', text), () => 'ok');
    return answer.ok ? { ok: true } : answer;
  }

  async get(deviceId: string, options?: { readonly fresh?: boolean }): Promise<DeviceLookup> {
    const cached = options?.fresh === true ? undefined : this.cache.get(deviceId);
    if (cached !== undefined) {
      this.redis.metrics.count('devices', 'get', 'cached');
      return { ok: true, device: cached };
    }
    const key = this.keys.device(deviceId);
    const answer = await this.redis.call(
      'devices',
      'get',
      (client) => client.hmget(key, 'record', 'revokedAt'),
      ([record]) => (record === null || record === undefined ? 'not_found' : 'found'),
    );
    if (!answer.ok) return answer;
    const [record, revokedText] = answer.value;
    // unknown devices are not cached: a device enrolled through another replica is usable at once
    if (record === null || record === undefined) return { ok: true, device: undefined };
    const device = deserializeDevice(record);
    const revokedAt = revokedText === null || revokedText === undefined ? undefined : Number(revokedText);
    const parsed = device === undefined || device.deviceId !== deviceId || (revokedAt !== undefined && !Number.isFinite(revokedAt))
      ? storeFailure('corrupt', `device ${deviceId}: the stored record does not parse`)
      : parseDevice(device, revokedAt, this.cache.getExpired(deviceId));
    if ('reason' in parsed) {
      this.redis.metrics.count('devices', 'get', 'corrupt');
      return parsed;
    }
    this.cache.set(deviceId, parsed);
    return { ok: true, device: parsed };
  }

  async revoke(deviceId: string, now: number): Promise<StoreChange> {
    this.cache.delete(deviceId);
    const key = this.keys.device(deviceId);
    // confirmed only once a replica has it: a failover must not silently un-revoke the device
    const answer = await this.redis.writeDurably('devices', 'revoke', key, (server) => server.eval(REVOKE_SCRIPT, 1, key, String(now)), (n) => (n === 1 ? 'ok' : 'not_found'));
    // a get racing this revoke may have cached the old record meanwhile
    this.cache.delete(deviceId);
    return answer.ok ? { ok: true, existed: answer.value === 1 } : answer;
  }
}

/** The registry of one process: records are parsed once at put and kept. */
export class MemoryDeviceRegistry implements DeviceRegistry {
  private readonly devices = new Map<string, StoredDevice>();

  constructor(private readonly metrics: StoreMetrics) {}

  put(device: EnrolledDevice): Promise<StoreWrite> {
    const revokedAt = this.devices.get(device.deviceId)?.revokedAt;
    const parsed = parseDevice(device, revokedAt);
    if ('reason' in parsed) {
      this.metrics.count('devices', 'put', 'invalid');
      return Promise.resolve(storeFailure('invalid', parsed.detail));
    }
    this.devices.set(device.deviceId, parsed);
    this.metrics.count('devices', 'put', 'ok');
    return Promise.resolve({ ok: true });
  }

  get(deviceId: string): Promise<DeviceLookup> {
    const device = this.devices.get(deviceId);
    this.metrics.count('devices', 'get', device === undefined ? 'not_found' : 'found');
    return Promise.resolve({ ok: true, device });
  }

  revoke(deviceId: string, now: number): Promise<StoreChange> {
    const device = this.devices.get(deviceId);
    this.metrics.count('devices', 'revoke', device === undefined ? 'not_found' : 'ok');
    if (device === undefined) return Promise.resolve({ ok: true, existed: false });
    if (device.revokedAt === undefined) this.devices.set(deviceId, { ...device, revokedAt: now });
    return Promise.resolve({ ok: true, existed: true });
  }
}

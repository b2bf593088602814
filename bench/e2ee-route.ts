// The e2ee route the benches measure: a route with the `e2ee` filter, a gateway key and an enrolled
// device made for the run, and the Process stream Envoy sends for one POST whose 1 KiB body the
// device sealed (request headers, body, response headers, the upstream's 1 KiB body). Its check
// fails a run whose answers are not the plaintext forwarded upstream and an answer the app opens.
// hot-path.ts runs it in-process (memory store); run.ts starts gatehouse on it under h2load (Redis
// store, the device seeded through the config's own stores).
import { randomBytes } from 'node:crypto';
import type { ProcessingResponse } from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import type { GatehouseConfig } from '../src/config/types.js';
import type { E2eeKeyring } from '../src/protocol/e2ee/keys.js';
import type { EnrolledDevice } from '../src/protocol/signing/enrollment.js';
import { enrolledDevice } from '../src/stores/test-devices.js';
import { generateDeviceKey } from '../sdk/app/e2ee.js';
import { enrollThroughStores, startBenchRedis } from './bench-stores.js';
import type { Scenario } from './extproc-load.js';
import { AUTHORITY, benchE2ee, checkAnswerKinds, checkSealedExchange, requestStream, routeLines, writeBenchConfig } from './route-kit.js';

const KEY_ID = 7;
const PATH = '/v1/transfers';
const CONFIG_FILE = 'gatehouse-e2ee.yaml';

export interface E2eeRoute {
  /** the config file written for the route (its gateway key file beside it) */
  readonly configFile: string;
  readonly config: GatehouseConfig;
  readonly device: EnrolledDevice;
  /** the stream of one request; its check throws unless the route decrypted and re-encrypted it */
  readonly scenario: Scenario & { readonly check: (answers: readonly ProcessingResponse[]) => void };
  /** what the app sealed and what the upstream answered, for measuring the protocol alone */
  readonly requestBody: Buffer;
  readonly sealedBody: Buffer;
  readonly upstreamBody: Buffer;
  readonly path: string;
  readonly audience: string;
  readonly keyring: E2eeKeyring;
}

/**
 * Writes the route's config and a fresh X25519 gateway key into `dir`, makes a device and seals a
 * `bodyBytes` request from it. `redisUrl`: the stores are Redis there (else memory); either way the
 * caller enrolls `device` before the first request.
 */
export function prepareE2eeRoute(dir: string, options: { bodyBytes?: number; redisUrl?: string } = {}): E2eeRoute {
  const bodyBytes = options.bodyBytes ?? 1024;
  const deviceKey = generateDeviceKey();
  const device = enrolledDevice({ e2eePublicKey: new Uint8Array(deviceKey.publicKey) });
  const e2ee = benchE2ee(dir, KEY_ID, device.deviceId, deviceKey.privateKey);
  const { configFile, config } = writeBenchConfig(dir, CONFIG_FILE, 'one route with the e2ee filter (bench/e2ee-route.ts)', routeLines('bench-e2ee', 'POST', PATH, [e2ee.filter]), options.redisUrl);

  const requestBody = randomBytes(bodyBytes);
  const sealed = e2ee.client.encryptRequest({ method: 'POST', path: PATH, body: requestBody, contentType: 'application/json' });
  if (!sealed.ok) throw new Error(`sealing: ${sealed.code}`);
  const upstreamBody = randomBytes(bodyBytes);
  const messages = requestStream({ method: 'POST', path: PATH, body: { bytes: sealed.body, contentType: sealed.headers['content-type'] }, responseBytes: bodyBytes, upstreamBody });
  const check = (answers: readonly ProcessingResponse[]): void => {
    checkAnswerKinds('e2ee', messages, answers);
    checkSealedExchange('e2ee', answers, requestBody, upstreamBody, sealed);
  };

  return {
    configFile,
    config,
    device,
    scenario: { name: 'e2ee', messages, check },
    requestBody,
    sealedBody: sealed.body,
    upstreamBody,
    path: PATH,
    audience: AUTHORITY,
    keyring: e2ee.keyring,
  };
}

/**
 * The route on a redis-server started for it (as a fleet runs: devices in Redis, read through
 * gatehouse's local device cache), with its device enrolled there through the config's own stores.
 * `cpu`: the core redis-server is pinned to (the load generator's, so it never takes gatehouse's).
 * Undefined when redis-server is not installed.
 */
export async function startE2eeRouteOnRedis(dir: string, cpu?: string): Promise<{ route: E2eeRoute; stop: () => Promise<void> } | undefined> {
  const redis = await startBenchRedis(cpu);
  if (redis === undefined) return undefined;
  try {
    const route = prepareE2eeRoute(dir, { redisUrl: redis.url });
    await enrollThroughStores(route.config.stores, route.device);
    return { route, stop: () => redis.close() };
  } catch (error) {
    await redis.close();
    throw error;
  }
}

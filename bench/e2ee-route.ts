// The e2ee route the benches measure: a route with the `e2ee` filter, a gateway key and an enrolled
// device made for the run, and the Process stream Envoy sends for one POST whose 1 KiB body the
// device sealed (request headers, body, response headers, the upstream's 1 KiB body). Its check
// fails a run whose answers are not the plaintext forwarded upstream and an answer the app opens.
// hot-path.ts runs it in-process (memory store); run.ts starts gatehouse on it under h2load (Redis
// store, the device seeded through the config's own stores).
import { create } from '@bufbuild/protobuf';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HttpBodySchema, HttpHeadersSchema, ProcessingRequestSchema, type ProcessingResponse } from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { parseConfig } from '../src/config/load.js';
import type { GatehouseConfig } from '../src/config/schema.js';
import { E2EE_RESPONSE_MEDIA_TYPE } from '../src/protocol/e2ee/index.js';
import { E2eeKeyring, encodeKeyConfigList, keyConfigOf, loadGatewayKey } from '../src/protocol/e2ee/keys.js';
import type { EnrolledDevice } from '../src/protocol/signing/enrollment.js';
import { enrolledDevice } from '../src/stores/test-devices.js';
import { createE2eeClient, generateDeviceKey } from '../sdk/app/e2ee.js';
import { enrollThroughStores, startBenchRedis } from './bench-stores.js';
import { headerMap, replacedBody, requestHeaderPairs, responseHeaderPairs, type Scenario } from './extproc-load.js';

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
 * caller enrolls `device` through the config's stores (enrollDevice) before the first request.
 */
export function prepareE2eeRoute(dir: string, options: { bodyBytes?: number; redisUrl?: string } = {}): E2eeRoute {
  const bodyBytes = options.bodyBytes ?? 1024;
  // the app binds the API authority it calls: the one the scenario's request headers carry
  const audience = requestHeaderPairs().find(([key]) => key === ':authority')?.[1];
  if (audience === undefined) throw new Error('the bench request headers carry no :authority');
  const keyFile = join(dir, 'e2ee-gateway.key');
  writeFileSync(keyFile, generateKeyPairSync('x25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const stores = options.redisUrl === undefined ? [] : ['stores:', '  kind: redis', `  redis: { mode: standalone, url: ${JSON.stringify(options.redisUrl)} }`];
  const yaml = [
    '# written by the bench (bench/e2ee-route.ts): one route with the e2ee filter',
    'listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }   # run.ts names the ports in the env',
    'unmatched: deny',
    'defaults: { budgetMs: 150 }',
    'telemetry: { logLevel: info, serviceName: gatehouse-bench, accessLog: true }',
    'shutdown: { graceMs: 2000 }',
    ...stores,
    'routes:',
    '  - id: bench-e2ee',
    `    match: { path: { exact: ${PATH} }, methods: [POST] }`,
    '    filters:',
    `      - e2ee: { keys: [{ keyId: ${KEY_ID}, privateKeyFile: ${JSON.stringify(keyFile)}, aeads: [aes-128-gcm] }], audience: ${audience}, plaintext: refuse }`,
  ].join('\n');
  const configFile = join(dir, CONFIG_FILE);
  writeFileSync(configFile, `${yaml}\n`);
  const parsed = parseConfig(yaml, configFile);
  if (!parsed.ok) throw new Error(`the e2ee bench config does not parse:\n${parsed.errors.map((e) => e.format()).join('\n')}`);

  const gatewayKey = loadGatewayKey({ keyId: KEY_ID, privateKey: readFileSync(keyFile, 'utf8') });
  const deviceKey = generateDeviceKey();
  const device = enrolledDevice({ e2eePublicKey: new Uint8Array(deviceKey.publicKey) });
  const made = createE2eeClient({
    keyConfigs: encodeKeyConfigList([keyConfigOf(gatewayKey)]), deviceKeyId: device.deviceId, devicePrivateKey: deviceKey.privateKey, audience, aeads: ['aes-128-gcm'],
  });
  if (!made.ok) throw new Error(`e2ee client: ${made.code}`);
  const requestBody = randomBytes(bodyBytes);
  const sealed = made.client.encryptRequest({ method: 'POST', path: PATH, body: requestBody, contentType: 'application/json' });
  if (!sealed.ok) throw new Error(`sealing: ${sealed.code}`);
  const upstreamBody = randomBytes(bodyBytes);

  const requestPairs = requestHeaderPairs().map(([key, value]): [string, string] =>
    key === ':path' ? [key, PATH] : key === 'content-type' ? [key, sealed.headers['content-type']] : key === 'content-length' ? [key, String(sealed.body.length)] : [key, value]);
  const responsePairs = responseHeaderPairs().map(([key, value]): [string, string] => (key === 'content-length' ? [key, String(bodyBytes)] : [key, value]));
  const messages = [
    create(ProcessingRequestSchema, { request: { case: 'requestHeaders', value: create(HttpHeadersSchema, { headers: headerMap(requestPairs), endOfStream: false }) } }),
    create(ProcessingRequestSchema, { request: { case: 'requestBody', value: create(HttpBodySchema, { body: sealed.body, endOfStream: true }) } }),
    create(ProcessingRequestSchema, { request: { case: 'responseHeaders', value: create(HttpHeadersSchema, { headers: headerMap(responsePairs), endOfStream: false }) } }),
    create(ProcessingRequestSchema, { request: { case: 'responseBody', value: create(HttpBodySchema, { body: upstreamBody, endOfStream: true }) } }),
  ];

  /** The upstream got the app's plaintext, and the app can open the answer to the upstream's body. */
  const check = (answers: readonly ProcessingResponse[]): void => {
    const kinds = answers.map((a) => a.response.case);
    if (kinds.join(',') !== 'requestHeaders,requestBody,responseHeaders,responseBody') throw new Error(`e2ee route answered ${kinds.join(',')}`);
    const forwarded = replacedBody(answers[1]);
    if (forwarded === undefined || !Buffer.from(forwarded).equals(requestBody)) throw new Error('the upstream would not get the plaintext');
    const sealedAnswer = replacedBody(answers[3]);
    if (sealedAnswer === undefined) throw new Error('the response body was not replaced');
    const opened = sealed.decryptResponse({ contentType: E2EE_RESPONSE_MEDIA_TYPE, body: sealedAnswer });
    if (!opened.ok || !opened.plaintext.equals(upstreamBody)) throw new Error(`the app cannot open the answer: ${opened.ok ? 'wrong plaintext' : opened.code}`);
  };

  return {
    configFile,
    config: parsed.config,
    device,
    scenario: { name: 'e2ee', messages, check },
    requestBody,
    sealedBody: sealed.body,
    upstreamBody,
    path: PATH,
    audience,
    keyring: new E2eeKeyring([gatewayKey]),
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

// gatehouse's own cost per HTTP request, without gRPC transport: the bench scenario's messages
// decoded from bytes, run through a real ExtProcStream (route match, chain, mutations, access log to
// a discarding stream, metrics), and the answers encoded to bytes — beside the same decode/encode
// with empty answers (what the ceiling server does). CPU time on this thread, bounded.
// Two routes: the bench's headers-only route, and an e2ee route with 1 KiB bodies both ways (beside
// the e2ee protocol operation alone, so the route's cost around it shows).
//   node dist/bench/hot-path.js [headers-only iterations] [e2ee iterations]
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { create, toBinary, fromBinary } from '@bufbuild/protobuf';
import {
  BodyResponseSchema,
  CommonResponseSchema,
  HeadersResponseSchema,
  ProcessingRequestSchema,
  ProcessingResponseSchema,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { parseConfig } from '../src/config/load.js';
import { buildRouteTable } from '../src/config/routes.js';
import { FILTER_REGISTRY } from '../src/filters/registry.js';
import { ExtProcStream, extProcServiceDefinition } from '../src/envoy/extproc.js';
import { createTelemetry } from '../src/telemetry/index.js';
import { buildScenario, headerMap, requestHeaderPairs, responseHeaderPairs } from './extproc-load.js';
import { randomBytes } from 'node:crypto';
import { HttpBodySchema, HttpHeadersSchema } from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { decryptRequest, E2EE_REQUEST_MEDIA_TYPE, E2EE_RESPONSE_MEDIA_TYPE } from '../src/protocol/e2ee/index.js';
import { E2eeKeyring, encodeKeyConfigList, keyConfigOf, loadGatewayKey } from '../src/protocol/e2ee/keys.js';
import { enrolledDevice } from '../src/stores/test-devices.js';
import { createE2eeClient, generateDeviceKey, type SealedRequest } from '../sdk/app/e2ee.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findPackageRoot } from '../src/config/load.js';
import { createFilterDeps } from '../src/pipeline/deps.js';
import { NODE_FLAGS } from './node-flags.js';

export interface HotPathResult {
  readonly gatehouseUsPerRequest: number;
  readonly emptyAnswerUsPerRequest: number;
  readonly ownUsPerRequest: number;
}

class FakeCall extends EventEmitter {
  bytesOut = 0;
  /** sees each answer, for the checks before a measurement */
  onAnswer: ((message: ProcessingResponse) => void) | undefined;
  constructor(private readonly serialize: (m: ProcessingResponse) => Buffer) {
    super();
  }
  write(message: ProcessingResponse): boolean {
    this.bytesOut += this.serialize(message).length;
    this.onAnswer?.(message);
    return true;
  }
  end(): void {
    this.emit('finish');
  }
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function measure(iterations: number, once: () => void): number {
  for (let i = 0; i < Math.min(2000, iterations); i++) once(); // warm up
  const start = cpuMicros();
  for (let i = 0; i < iterations; i++) once();
  return (cpuMicros() - start) / iterations;
}

export function runHotPath(iterations = 40_000): HotPathResult {
  const root = findPackageRoot();
  const parsed = parseConfig(readFileSync(join(root, 'bench/gatehouse-bench.yaml'), 'utf8'), 'bench/gatehouse-bench.yaml');
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.format()).join('\n'));
  const built = buildRouteTable(parsed.config, { registry: FILTER_REGISTRY, deps: createFilterDeps() });
  if (!built.ok) throw new Error('bench config does not compile');
  const table = built.table;
  const telemetry = createTelemetry({ version: 'bench', logLevel: 'info', defaultMetrics: false, logDestination: { write: () => undefined } });
  const scenario = buildScenario('headers-only');
  const frames = scenario.messages.map((m) => Buffer.from(toBinary(ProcessingRequestSchema, m)));
  const method = extProcServiceDefinition['process']!;
  const deserialize = method.requestDeserialize as (b: Buffer) => ProcessingRequest;
  const serialize = method.responseSerialize as (m: ProcessingResponse) => Buffer;
  const options = { routes: { current: () => table }, telemetry, accepting: () => true };

  const gatehouseUs = measure(iterations, () => {
    const call = new FakeCall(serialize);
    new ExtProcStream(call as never, options);
    for (const frame of frames) call.emit('data', deserialize(frame));
    call.emit('end');
  });

  const emptyUs = measure(iterations, () => {
    const call = new FakeCall(serialize);
    call.on('data', (m: ProcessingRequest) => {
      const kind = m.request.case === 'requestHeaders' ? 'requestHeaders' : 'responseHeaders';
      call.write(create(ProcessingResponseSchema, { response: { case: kind, value: create(HeadersResponseSchema, { response: create(CommonResponseSchema) }) } }));
    });
    for (const frame of frames) call.emit('data', fromBinary(ProcessingRequestSchema, frame));
    call.emit('end');
  });
  return { gatehouseUsPerRequest: gatehouseUs, emptyAnswerUsPerRequest: emptyUs, ownUsPerRequest: gatehouseUs - emptyUs };
}

export interface E2eeRouteHotPathResult {
  /** gatehouse's whole cost of one request on an e2ee route: four messages decoded, the chain
   * (device lookup in the memory store, decrypt, re-encrypt), answers encoded, log line, metrics */
  readonly gatehouseUsPerRequest: number;
  /** the same four messages decoded and answered empty (what the with-bodies ceiling server does) */
  readonly emptyAnswerUsPerRequest: number;
  /** decryptRequest + ResponseEncrypter.encrypt alone, on the same bodies */
  readonly e2eeUsPerRequest: number;
  /** gatehouse minus the empty answers minus the protocol operation: the route's own cost around it */
  readonly routeOwnUsPerRequest: number;
  readonly bodyBytes: number;
}

/**
 * The same for a route with the `e2ee` filter (1 KiB bodies both ways): the four messages Envoy
 * sends for it, a device enrolled in the memory store, the dev-only gateway key 7. Each request is
 * awaited (the device lookup is async), one at a time. A request that is not decrypted and
 * re-encrypted end to end stops the measurement.
 */
export async function runE2eeRouteHotPath(iterations = 20_000, bodyBytes = 1024): Promise<E2eeRouteHotPathResult> {
  const root = findPackageRoot();
  const keyFile = join(root, 'config/e2ee-gateway-7.dev-only.key');
  // the app binds the API authority it calls: the one the scenario's request headers carry
  const audience = requestHeaderPairs().find(([key]) => key === ':authority')?.[1];
  if (audience === undefined) throw new Error('the bench request headers carry no :authority');
  const path = '/v1/transfers';
  const yaml = [
    'listen: { grpc: "127.0.0.1:9001", admin: "127.0.0.1:9002" }',
    'unmatched: deny',
    'defaults: { budgetMs: 150 }',
    'telemetry: { logLevel: info, serviceName: gatehouse-bench, accessLog: true }',
    'routes:',
    '  - id: bench-e2ee',
    `    match: { path: { exact: ${path} }, methods: [POST] }`,
    '    filters:',
    `      - e2ee: { keys: [{ keyId: 7, privateKeyFile: ${JSON.stringify(keyFile)} }], audience: ${audience}, plaintext: refuse }`,
  ].join('\n');
  const parsed = parseConfig(yaml, join(root, 'bench/hot-path-e2ee.yaml'));
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.format()).join('\n'));
  const deps = createFilterDeps();
  const built = buildRouteTable(parsed.config, { registry: FILTER_REGISTRY, deps });
  if (!built.ok) throw new Error('e2ee bench config does not compile');
  const table = built.table;

  const deviceKey = generateDeviceKey();
  const device = enrolledDevice({ e2eePublicKey: new Uint8Array(deviceKey.publicKey) });
  const stored = await deps.stores.devices.put(device);
  if (!stored.ok) throw new Error(`seeding the device: ${stored.detail}`);
  const keyConfigs = encodeKeyConfigList([keyConfigOf(loadGatewayKey({ keyId: 7, privateKey: readFileSync(keyFile, 'utf8') }))]);
  const made = createE2eeClient({ keyConfigs, deviceKeyId: device.deviceId, devicePrivateKey: deviceKey.privateKey, audience, aeads: ['aes-128-gcm'] });
  if (!made.ok) throw new Error(`e2ee client: ${made.code}`);
  const plaintext = randomBytes(bodyBytes);
  const sealed = made.client.encryptRequest({ method: 'POST', path, body: plaintext, contentType: 'application/json' });
  if (!sealed.ok) throw new Error(`sealing: ${sealed.code}`);
  const upstreamBody = randomBytes(bodyBytes);

  const requestPairs = requestHeaderPairs().map(([key, value]): [string, string] =>
    key === ':path' ? [key, path] : key === 'content-type' ? [key, sealed.headers['content-type']] : key === 'content-length' ? [key, String(sealed.body.length)] : [key, value]);
  const responsePairs = responseHeaderPairs().map(([key, value]): [string, string] => (key === 'content-length' ? [key, String(bodyBytes)] : [key, value]));
  const messages = [
    create(ProcessingRequestSchema, { request: { case: 'requestHeaders', value: create(HttpHeadersSchema, { headers: headerMap(requestPairs), endOfStream: false }) } }),
    create(ProcessingRequestSchema, { request: { case: 'requestBody', value: create(HttpBodySchema, { body: sealed.body, endOfStream: true }) } }),
    create(ProcessingRequestSchema, { request: { case: 'responseHeaders', value: create(HttpHeadersSchema, { headers: headerMap(responsePairs), endOfStream: false }) } }),
    create(ProcessingRequestSchema, { request: { case: 'responseBody', value: create(HttpBodySchema, { body: upstreamBody, endOfStream: true }) } }),
  ];
  const frames = messages.map((m) => Buffer.from(toBinary(ProcessingRequestSchema, m)));
  const method = extProcServiceDefinition['process']!;
  const deserialize = method.requestDeserialize as (b: Buffer) => ProcessingRequest;
  const serialize = method.responseSerialize as (m: ProcessingResponse) => Buffer;
  const telemetry = createTelemetry({ version: 'bench', logLevel: 'info', defaultMetrics: false, logDestination: { write: () => undefined } });
  const options = { routes: { current: () => table }, telemetry, accepting: () => true };

  const once = async (check: boolean): Promise<void> => {
    const call = new FakeCall(serialize);
    const answers: ProcessingResponse[] = [];
    if (check) call.onAnswer = (m) => answers.push(m);
    const finished = new Promise<void>((resolve) => call.once('finish', resolve));
    new ExtProcStream(call as never, options);
    for (const frame of frames) call.emit('data', deserialize(frame));
    call.emit('end');
    await finished;
    if (check) checkE2eeAnswers(answers, plaintext, upstreamBody, (response) => sealed.decryptResponse(response));
  };
  await once(true); // the route really decrypts and re-encrypts, else the figures mean nothing
  const gatehouseUs = await measureAsync(iterations, () => once(false));

  const keyring = new E2eeKeyring([loadGatewayKey({ keyId: 7, privateKey: readFileSync(keyFile, 'utf8') })]);
  const stored2 = await deps.stores.devices.get(device.deviceId);
  const e2eeKey = stored2.ok ? stored2.device?.e2eeKey : undefined;
  if (e2eeKey === undefined) throw new Error('the seeded device has no e2ee key');
  const protocolUs = measure(iterations, () => {
    const opened = decryptRequest({ method: 'POST', path, audience, body: sealed.body, contentType: E2EE_REQUEST_MEDIA_TYPE }, { keyring, deviceKey: () => e2eeKey });
    if (!opened.ok) throw new Error(opened.code);
    const answer = opened.response.encrypt(upstreamBody, 'application/json');
    if (!answer.ok) throw new Error(answer.code);
  });
  const emptyUs = measure(iterations, () => {
    const call = new FakeCall(serialize);
    call.on('data', (m: ProcessingRequest) => call.write(emptyAnswer(m)));
    for (const frame of frames) call.emit('data', fromBinary(ProcessingRequestSchema, frame));
    call.emit('end');
  });
  return {
    gatehouseUsPerRequest: gatehouseUs,
    emptyAnswerUsPerRequest: emptyUs,
    e2eeUsPerRequest: protocolUs,
    routeOwnUsPerRequest: gatehouseUs - emptyUs - protocolUs,
    bodyBytes,
  };
}

/** An answer that changes nothing, of the kind the message asks for. */
function emptyAnswer(message: ProcessingRequest): ProcessingResponse {
  const common = create(CommonResponseSchema);
  switch (message.request.case) {
    case 'requestHeaders':
    case 'responseHeaders':
      return create(ProcessingResponseSchema, { response: { case: message.request.case, value: create(HeadersResponseSchema, { response: common }) } });
    case 'requestBody':
    case 'responseBody':
      return create(ProcessingResponseSchema, { response: { case: message.request.case, value: create(BodyResponseSchema, { response: common }) } });
    case 'requestTrailers':
    case 'responseTrailers':
    case undefined:
      throw new Error(`the e2ee scenario sends no ${String(message.request.case)}`);
  }
}

/** The upstream got the app's plaintext, and the app can open the answer to the upstream's body. */
function checkE2eeAnswers(
  answers: readonly ProcessingResponse[],
  plaintext: Buffer,
  upstreamBody: Buffer,
  decryptResponse: SealedRequest['decryptResponse'],
): void {
  const kinds = answers.map((a) => a.response.case);
  if (kinds.join(',') !== 'requestHeaders,requestBody,responseHeaders,responseBody') throw new Error(`e2ee route answered ${kinds.join(',')}`);
  const bodyOf = (answer: ProcessingResponse | undefined): Uint8Array | undefined => {
    const value = answer?.response.value as { response?: { bodyMutation?: { mutation: { case: string; value: unknown } } } } | undefined;
    const mutation = value?.response?.bodyMutation?.mutation;
    return mutation?.case === 'body' ? (mutation.value as Uint8Array) : undefined;
  };
  const forwarded = bodyOf(answers[1]);
  if (forwarded === undefined || !Buffer.from(forwarded).equals(plaintext)) throw new Error('the upstream would not get the plaintext');
  const sealedAnswer = bodyOf(answers[3]);
  if (sealedAnswer === undefined) throw new Error('the response body was not replaced');
  const opened = decryptResponse({ contentType: E2EE_RESPONSE_MEDIA_TYPE, body: sealedAnswer });
  if (!opened.ok || !opened.plaintext.equals(upstreamBody)) throw new Error(`the app cannot open the answer: ${opened.ok ? 'wrong plaintext' : opened.code}`);
}

async function measureAsync(iterations: number, once: () => Promise<void>): Promise<number> {
  for (let i = 0; i < Math.min(2000, iterations); i++) await once(); // warm up
  const start = cpuMicros();
  for (let i = 0; i < iterations; i++) await once();
  return (cpuMicros() - start) / iterations;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  if (NODE_FLAGS.every((flag) => process.execArgv.includes(flag))) {
    const r = runHotPath(Number(process.argv[2] ?? 40_000));
    console.log(JSON.stringify(r, null, 2));
    const e2ee = await runE2eeRouteHotPath(Number(process.argv[3] ?? 20_000));
    console.log(JSON.stringify({ e2eeRoute: e2ee }, null, 2));
  } else {
    // measured under gatehouse's own V8 flags, or the figures describe another heap (node-flags.ts)
    const again = spawnSync(process.execPath, [...process.execArgv, ...NODE_FLAGS, ...process.argv.slice(1)], { stdio: 'inherit' });
    process.exit(again.status ?? 1);
  }
}

// gatehouse's own cost per HTTP request, without gRPC transport: the bench scenario's messages
// decoded from bytes, run through a real ExtProcStream (route match, chain, mutations, access log to
// a discarding stream, metrics), and the answers encoded to bytes — beside the same decode/encode
// with empty answers (what the ceiling server does). CPU time on this thread, bounded.
// Two routes: the bench's headers-only route, and an e2ee route with 1 KiB bodies both ways (beside
// the e2ee protocol operation alone, so the route's cost around it shows).
//   node dist/bench/hot-path.js [headers-only iterations] [e2ee iterations]
import { spawnSync } from 'node:child_process';
import { Session } from 'node:inspector';
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
import { extProcServiceDefinition } from '../src/envoy/extproc-answers.js';
import { ExtProcStream } from '../src/envoy/extproc.js';
import { createTelemetry } from '../src/telemetry/index.js';
import { buildScenario } from './extproc-load.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decryptRequest, E2EE_REQUEST_MEDIA_TYPE } from '../src/protocol/e2ee/index.js';
import { findPackageRoot } from '../src/config/load.js';
import { createFilterDeps } from '../src/filters/deps.js';
import { enroll } from './bench-stores.js';
import { prepareE2eeRoute, type E2eeRoute } from './e2ee-route.js';
import { NODE_FLAGS } from './node-flags.js';

export interface HotPathResult {
  readonly gatehouseUsPerRequest: number;
  readonly emptyAnswerUsPerRequest: number;
  readonly ownUsPerRequest: number;
  /** bytes the JS heap allocates per request (sampled): unlike CPU time, not skewed by other load,
   * and what sets how often the young generation is scavenged under load */
  readonly gatehouseBytesPerRequest: number;
  readonly emptyAnswerBytesPerRequest: number;
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

/**
 * Bytes allocated per call, from V8's sampling heap profiler with collected objects kept in the
 * profile (its sizes are scaled to unbiased estimates of everything allocated).
 */
function allocatedBytes(label: string, iterations: number, once: () => void): number {
  const profileDir = process.env['HOT_PATH_HEAP_PROFILE'];
  for (let i = 0; i < Math.min(2000, iterations); i++) once(); // warm up: no compilation garbage in the figure
  const session = new Session();
  session.connect();
  const post = (method: string, params: object = {}): { profile?: { head: SampledNode } } => {
    let result: { profile?: { head: SampledNode } } = {};
    // an in-thread inspector session answers synchronously
    session.post(method, params, (error, answer) => {
      if (error) throw error;
      result = answer as typeof result;
    });
    return result;
  };
  try {
    post('HeapProfiler.enable');
    post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    for (let i = 0; i < iterations; i++) once();
    const { profile } = post('HeapProfiler.stopSampling');
    if (!profile) throw new Error('the heap profiler returned no profile');
    // HOT_PATH_HEAP_PROFILE=dir: keep each profile (Chrome DevTools opens .heapprofile files) to see where
    if (profileDir !== undefined) writeFileSync(join(profileDir, `${label}.heapprofile`), JSON.stringify(profile));
    const total = (node: SampledNode): number => node.children.reduce((sum, child) => sum + total(child), node.selfSize);
    return total(profile.head) / iterations;
  } finally {
    session.disconnect();
  }
}

interface SampledNode {
  readonly selfSize: number;
  readonly children: readonly SampledNode[];
}

function measure(iterations: number, once: () => void): number {
  for (let i = 0; i < Math.min(2000, iterations); i++) once(); // warm up
  const start = cpuMicros();
  for (let i = 0; i < iterations; i++) once();
  return (cpuMicros() - start) / iterations;
}

export function runHotPath(iterations = 40_000): HotPathResult {
  const root = findPackageRoot();
  const parsed = parseConfig(readFileSync(join(root, 'bench/gatehouse-bench.yaml'), 'utf8'), 'bench/gatehouse-bench.yaml', { registry: FILTER_REGISTRY });
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

  const gatehouseOnce = (): void => {
    const call = new FakeCall(serialize);
    new ExtProcStream(call as never, options);
    for (const frame of frames) call.emit('data', deserialize(frame));
    call.emit('end');
  };
  const emptyOnce = (): void => {
    const call = new FakeCall(serialize);
    call.on('data', (m: ProcessingRequest) => {
      const kind = m.request.case === 'requestHeaders' ? 'requestHeaders' : 'responseHeaders';
      call.write(create(ProcessingResponseSchema, { response: { case: kind, value: create(HeadersResponseSchema, { response: create(CommonResponseSchema) }) } }));
    });
    for (const frame of frames) call.emit('data', fromBinary(ProcessingRequestSchema, frame));
    call.emit('end');
  };
  const gatehouseUs = measure(iterations, gatehouseOnce);
  const emptyUs = measure(iterations, emptyOnce);
  const allocationRuns = Math.min(iterations, 20_000);
  return {
    gatehouseUsPerRequest: gatehouseUs,
    emptyAnswerUsPerRequest: emptyUs,
    ownUsPerRequest: gatehouseUs - emptyUs,
    gatehouseBytesPerRequest: allocatedBytes('headers-only-gatehouse', allocationRuns, gatehouseOnce),
    emptyAnswerBytesPerRequest: allocatedBytes('headers-only-empty-answers', allocationRuns, emptyOnce),
  };
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
 * sends for it (bench/e2ee-route.ts), its device enrolled in the memory store. Each request is
 * awaited (the device lookup is async), one at a time. A request that is not decrypted and
 * re-encrypted end to end stops the measurement.
 */
export async function runE2eeRouteHotPath(iterations = 20_000, bodyBytes = 1024): Promise<E2eeRouteHotPathResult> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-hot-path-'));
  try {
    return await measureE2eeRoute(prepareE2eeRoute(dir, { bodyBytes }), iterations);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureE2eeRoute(route: E2eeRoute, iterations: number): Promise<E2eeRouteHotPathResult> {
  const deps = createFilterDeps();
  const built = buildRouteTable(route.config, { registry: FILTER_REGISTRY, deps });
  if (!built.ok) throw new Error('e2ee bench config does not compile');
  const table = built.table;
  await enroll(deps.stores.devices, route.device);
  const frames = route.scenario.messages.map((m) => Buffer.from(toBinary(ProcessingRequestSchema, m)));
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
    if (check) route.scenario.check(answers);
  };
  await once(true); // the route really decrypts and re-encrypts, else the figures mean nothing
  const gatehouseUs = await measureAsync(iterations, () => once(false));

  const stored = await deps.stores.devices.get(route.device.deviceId);
  const e2eeKey = stored.ok ? stored.device?.e2eeKey : undefined;
  if (e2eeKey === undefined) throw new Error('the seeded device has no e2ee key');
  const { keyring, path, audience, sealedBody, upstreamBody } = route;
  const protocolUs = measure(iterations, () => {
    const opened = decryptRequest({ method: 'POST', path, audience, body: sealedBody, contentType: E2EE_REQUEST_MEDIA_TYPE }, { keyring, deviceKey: () => e2eeKey });
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
    bodyBytes: route.requestBody.length,
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

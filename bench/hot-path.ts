// gatehouse's own cost per HTTP request, without gRPC transport: the bench scenario's messages
// decoded from bytes, run through a real ExtProcStream (route match, chain, mutations, access log to
// a discarding stream, metrics), and the answers encoded to bytes — beside the same decode/encode
// with empty answers (what the ceiling server does). CPU time on this thread, bounded.
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { create, toBinary, fromBinary } from '@bufbuild/protobuf';
import {
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
import { buildScenario } from './extproc-load.js';
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
  constructor(private readonly serialize: (m: ProcessingResponse) => Buffer) {
    super();
  }
  write(message: ProcessingResponse): boolean {
    this.bytesOut += this.serialize(message).length;
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

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  if (NODE_FLAGS.every((flag) => process.execArgv.includes(flag))) {
    const r = runHotPath(Number(process.argv[2] ?? 40_000));
    console.log(JSON.stringify(r, null, 2));
  } else {
    // measured under gatehouse's own V8 flags, or the figures describe another heap (node-flags.ts)
    const again = spawnSync(process.execPath, [...process.execArgv, ...NODE_FLAGS, ...process.argv.slice(1)], { stdio: 'inherit' });
    process.exit(again.status ?? 1);
  }
}

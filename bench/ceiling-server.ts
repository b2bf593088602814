// The ceiling: the least an ext_proc server can do with grpc-js and protobuf-es. Every message on a
// Process stream is answered at once with an empty response of the matching kind, nothing else.
// Whatever gatehouse does on top costs the difference between its figures and these.
//
//   node dist/bench/ceiling-server.js --port N     (N = 0 picks a free port)
//
// prints {"listening": port} on stdout once bound, and stops on SIGTERM / SIGINT.
import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  BodyResponseSchema,
  HeadersResponseSchema,
  ProcessingResponseSchema,
  TrailersResponseSchema,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { extProcService } from '../src/envoy/grpc-services.js';

/** The empty answer of the kind Envoy expects for this request, or undefined for an empty message. */
export function emptyAnswer(req: ProcessingRequest): ProcessingResponse | undefined {
  const r = req.request;
  switch (r.case) {
    case 'requestHeaders':
      return create(ProcessingResponseSchema, { response: { case: 'requestHeaders', value: create(HeadersResponseSchema) } });
    case 'responseHeaders':
      return create(ProcessingResponseSchema, { response: { case: 'responseHeaders', value: create(HeadersResponseSchema) } });
    case 'requestBody':
      return create(ProcessingResponseSchema, { response: { case: 'requestBody', value: create(BodyResponseSchema) } });
    case 'responseBody':
      return create(ProcessingResponseSchema, { response: { case: 'responseBody', value: create(BodyResponseSchema) } });
    case 'requestTrailers':
      return create(ProcessingResponseSchema, { response: { case: 'requestTrailers', value: create(TrailersResponseSchema) } });
    case 'responseTrailers':
      return create(ProcessingResponseSchema, { response: { case: 'responseTrailers', value: create(TrailersResponseSchema) } });
    case undefined:
      return undefined;
  }
}

export interface RunningServer {
  port: number;
  close(): Promise<void>;
}

export async function startCeilingServer(port = 0, host = '127.0.0.1'): Promise<RunningServer> {
  const server = new Server();
  server.addService(extProcService, {
    process(call: ServerDuplexStream<ProcessingRequest, ProcessingResponse>) {
      call.on('data', (req: ProcessingRequest) => {
        const answer = emptyAnswer(req);
        if (answer !== undefined) call.write(answer);
      });
      call.on('end', () => { call.end(); });
      call.on('error', () => { /* client went away (Envoy resets the stream): nothing to clean up */ });
    },
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (err, p) => {
      if (err) reject(err);
      else resolve(p);
    });
  });
  return {
    port: bound,
    close: () => new Promise<void>((resolve) => {
      server.tryShutdown(() => { resolve(); });
      // streams h2load left open must not hold the shutdown forever
      setTimeout(() => { server.forceShutdown(); resolve(); }, 2000).unref();
    }),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: not a port: ${values.port}`);
  const server = await startCeilingServer(port, values.host);
  process.stdout.write(`${JSON.stringify({ listening: server.port })}\n`);
  const stop = (): void => { void server.close().then(() => process.exit(0)); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

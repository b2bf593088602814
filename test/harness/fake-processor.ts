// Scripted fake ext_proc / ext_authz servers for the stand-in self-tests: grpc-js servers on
// 127.0.0.1:0 whose answers each test scripts.
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { authorizationService, extProcService } from '../../src/envoy/grpc-services.js';
import {
  CommonResponseSchema,
  HeadersResponseSchema,
  BodyResponseSchema,
  TrailersResponseSchema,
  ProcessingResponseSchema,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import type { CheckRequest, CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';

export type ResponseInit = Exclude<MessageInitShape<typeof ProcessingResponseSchema>, ProcessingResponse>;

export interface FakeStream {
  received: ProcessingRequest[];
  metadata: Record<string, string>;
  authority: string;
  halfClosed: boolean;
  cancelled: boolean;
  /** Resolves when the stream is over (client cancel / half-close, or the script ended it). */
  done: Promise<void>;
}

export interface StreamCtx {
  stream: FakeStream;
  /** The next message from Envoy, or undefined when the stream ends / after `timeoutMs` (default 3000). */
  next(timeoutMs?: number): Promise<ProcessingRequest | undefined>;
  send(r: ResponseInit | ProcessingResponse): void;
  /** Finish the stream with OK (default) or an error status. */
  end(status?: { code: number; details: string }): void;
}

export type StreamScript = (ctx: StreamCtx) => Promise<void>;

export interface FakeProcessor {
  address: string;
  streams: FakeStream[];
  close(): Promise<void>;
}

async function listen(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err !== null) reject(err);
      else resolve(port);
    });
  });
}

export async function startFakeProcessor(script: StreamScript): Promise<FakeProcessor> {
  const streams: FakeStream[] = [];
  const server = new grpc.Server();
  server.addService(extProcService, {
    process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      const queue: ProcessingRequest[] = [];
      let waiter: (() => void) | undefined;
      let finished = false;
      let resolveDone!: () => void;
      const md: Record<string, string> = {};
      for (const [k, v] of Object.entries(call.metadata.getMap())) md[k] = typeof v === 'string' ? v : v.toString('latin1');
      const stream: FakeStream = {
        received: [],
        metadata: md,
        authority: call.getHost(),
        halfClosed: false,
        cancelled: false,
        done: new Promise<void>((r) => (resolveDone = r)),
      };
      streams.push(stream);
      const wake = (): void => {
        const w = waiter;
        waiter = undefined;
        w?.();
      };
      call.on('data', (m: ProcessingRequest) => {
        stream.received.push(m);
        queue.push(m);
        wake();
      });
      call.on('end', () => {
        stream.halfClosed = true;
        wake();
      });
      call.on('cancelled', () => {
        stream.cancelled = true;
        finished = true;
        resolveDone();
        wake();
      });
      call.on('error', () => undefined);
      const ctx: StreamCtx = {
        stream,
        next: async (timeoutMs = 3000) => {
          const deadline = Date.now() + timeoutMs;
          while (queue.length === 0 && !finished && !stream.halfClosed && Date.now() < deadline) {
            await Promise.race([new Promise<void>((r) => (waiter = r)), sleep(Math.max(1, deadline - Date.now()))]);
          }
          return queue.shift();
        },
        send: (r) => {
          if (finished || call.cancelled) return;
          call.write(create(ProcessingResponseSchema, r));
        },
        end: (status) => {
          if (finished || call.cancelled) return;
          finished = true;
          if (status === undefined || status.code === 0) call.end();
          else call.emit('error', { code: status.code, details: status.details });
          resolveDone();
        },
      };
      void script(ctx).catch(() => undefined);
    },
  });
  const port = await listen(server);
  return {
    address: `127.0.0.1:${port}`,
    streams,
    close: () => new Promise<void>((resolve) => { server.tryShutdown(() => { resolve(); }); server.forceShutdown(); }),
  };
}

/** A CONTINUE answer of the right kind for an Envoy message. */
export function continueFor(req: ProcessingRequest, common: MessageInitShape<typeof CommonResponseSchema> = {}): ResponseInit {
  const response = create(CommonResponseSchema, common);
  switch (req.request.case) {
    case 'requestHeaders':
      return { response: { case: 'requestHeaders', value: create(HeadersResponseSchema, { response }) } };
    case 'responseHeaders':
      return { response: { case: 'responseHeaders', value: create(HeadersResponseSchema, { response }) } };
    case 'requestBody':
      return { response: { case: 'requestBody', value: create(BodyResponseSchema, { response }) } };
    case 'responseBody':
      return { response: { case: 'responseBody', value: create(BodyResponseSchema, { response }) } };
    case 'requestTrailers':
      return { response: { case: 'requestTrailers', value: create(TrailersResponseSchema, { headerMutation: common.headerMutation }) } };
    case 'responseTrailers':
      return { response: { case: 'responseTrailers', value: create(TrailersResponseSchema, { headerMutation: common.headerMutation }) } };
    case undefined:
      return {};
  }
}

/** A script answering every message with `answer(req)` (default: CONTINUE) until the stream ends. */
export function answerEach(answer: (req: ProcessingRequest, index: number) => ResponseInit | undefined = (r) => continueFor(r)): StreamScript {
  return async (ctx) => {
    for (let i = 0; i < 100; i++) {
      const m = await ctx.next();
      if (m === undefined) return;
      const a = answer(m, i);
      if (a !== undefined) ctx.send(a);
    }
  };
}

export interface FakeAuthz {
  address: string;
  /** deadlineMs: the call's deadline relative to its arrival (from grpc-timeout), Infinity if none. */
  calls: { request: CheckRequest; metadata: Record<string, string>; cancelled: boolean; deadlineMs: number }[];
  close(): Promise<void>;
}

/** A fake Authorization server: `answer` returns a CheckResponse, a gRPC error, or hangs ('hang'). */
export async function startFakeAuthz(
  answer: (req: CheckRequest) => Promise<CheckResponse | { code: grpc.status; details: string } | 'hang'> | CheckResponse | { code: grpc.status; details: string } | 'hang',
): Promise<FakeAuthz> {
  const calls: FakeAuthz['calls'] = [];
  const server = new grpc.Server();
  server.addService(authorizationService, {
    check: (call: grpc.ServerUnaryCall<CheckRequest, CheckResponse>, cb: grpc.sendUnaryData<CheckResponse>) => {
      const md: Record<string, string> = {};
      for (const [k, v] of Object.entries(call.metadata.getMap())) md[k] = typeof v === 'string' ? v : v.toString('latin1');
      const d = call.getDeadline();
      const deadlineMs = d instanceof Date ? d.getTime() - Date.now() : d === Infinity ? Infinity : d - Date.now();
      const rec = { request: call.request, metadata: md, cancelled: false, deadlineMs };
      calls.push(rec);
      call.on('cancelled', () => { rec.cancelled = true; });
      void Promise.resolve(answer(call.request)).then((a) => {
        if (a === 'hang' || call.cancelled) return;
        if ('$typeName' in a) cb(null, a);
        else cb({ code: a.code, details: a.details });
      });
    },
  });
  const port = await listen(server);
  return {
    address: `127.0.0.1:${port}`,
    calls,
    close: () => new Promise<void>((resolve) => { server.tryShutdown(() => { resolve(); }); server.forceShutdown(); }),
  };
}

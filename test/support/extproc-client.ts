// A bare ext_proc client for protocol-level tests the Envoy stand-in cannot express (undecodable
// bytes, out-of-order messages, half-close timing). It sends exactly what the test says.
import * as grpc from '@grpc/grpc-js';
import { create, toBinary, fromBinary, type MessageInitShape } from '@bufbuild/protobuf';
import {
  ProcessingRequestSchema,
  ProcessingResponseSchema,
  type ProcessingResponse,
} from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { HeaderValueSchema } from '../../src/gen/envoy/config/core/v3/base_pb.js';

export type RequestInit = MessageInitShape<typeof ProcessingRequestSchema>;

const enc = new TextEncoder();

/** Headers as Envoy sends them: lower-case keys, values only in raw_value (envoy-behaviours 1.3). */
export function envoyHeaders(pairs: [string, string][]): { headers: { key: string; rawValue: Uint8Array }[] } {
  return { headers: pairs.map(([key, value]) => create(HeaderValueSchema, { key, rawValue: enc.encode(value) })) };
}

export function requestHeaders(pairs: [string, string][], endOfStream = true): RequestInit {
  return { request: { case: 'requestHeaders', value: { headers: envoyHeaders(pairs), endOfStream } } };
}

export function responseHeaders(pairs: [string, string][], endOfStream = true): RequestInit {
  return { request: { case: 'responseHeaders', value: { headers: envoyHeaders(pairs), endOfStream } } };
}

export interface StreamEnd {
  code: grpc.status;
  details: string;
}

export class RawExtProcStream {
  private readonly answers: ProcessingResponse[] = [];
  private readonly waiting: (() => void)[] = [];
  /** set once the stream has its status: no answer can come after it */
  private endedWith: StreamEnd | undefined;
  readonly ended: Promise<StreamEnd>;
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;

  constructor(client: grpc.Client) {
    this.call = client.makeBidiStreamRequest(
      '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    this.call.on('data', (bytes: Buffer) => {
      this.answers.push(fromBinary(ProcessingResponseSchema, bytes));
      for (const w of this.waiting.splice(0)) w();
    });
    this.ended = new Promise((resolve) => {
      this.call.on('status', (s: grpc.StatusObject) => {
        this.endedWith = { code: s.code, details: s.details };
        resolve(this.endedWith);
        for (const w of this.waiting.splice(0)) w();
      });
      this.call.on('error', () => undefined);
    });
  }

  send(init: RequestInit): void {
    this.sendBytes(Buffer.from(toBinary(ProcessingRequestSchema, create(ProcessingRequestSchema, init))));
  }

  sendBytes(bytes: Buffer): void {
    this.call.write(bytes);
  }

  /** Envoy's close: half-close, then reset (envoy-behaviours 10.4) */
  closeLikeEnvoy(): void {
    this.call.end();
    this.call.cancel();
  }

  halfClose(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }

  async next(timeoutMs = 2000): Promise<ProcessingResponse> {
    const deadline = Date.now() + timeoutMs;
    while (this.answers.length === 0) {
      // ended without (another) answer: say so now rather than at the deadline
      if (this.endedWith !== undefined) throw new Error(`no answer from the processor: the stream ended ${grpc.status[this.endedWith.code]} ${this.endedWith.details}`);
      if (Date.now() > deadline) throw new Error('no answer from the processor');
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        setTimeout(resolve, 25);
      });
    }
    return this.answers.shift()!;
  }

  get pending(): number {
    return this.answers.length;
  }
}

export function rawClient(port: number): grpc.Client {
  return new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

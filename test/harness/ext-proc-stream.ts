// The ext_proc side stream as Envoy's gRPC client drives it (catalogue 10).
// * one bidi `Process` stream, opened lazily by the filter;
// * every message is written without END_STREAM (10.2);
// * close() = half-close followed immediately by cancel (RST_STREAM), never waiting for the
//   server's status (10.4, runtime ext_proc_graceful_grpc_close off);
// * initial metadata per 10.6.
import * as grpc from '@grpc/grpc-js';
import { extProcService } from '../../src/envoy/grpc-services.js';
import type { ProcessingRequest, ProcessingResponse } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.js';

export type StreamClosedBy = 'none' | 'envoy' | 'server';

export interface StreamEvents {
  onMessage(m: ProcessingResponse): void;
  /** The server finished the stream with this status (before Envoy closed it). */
  onStatus(code: number, details: string): void;
}

export class ProcessorStream {
  private readonly call: grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
  private closed = false;
  closedBy: StreamClosedBy = 'none';
  serverStatus: { code: number; details: string } | undefined;

  constructor(client: grpc.Client, metadata: grpc.Metadata, events: StreamEvents) {
    const def = extProcService.process;
    this.call = client.makeBidiStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, metadata, {});
    this.call.on('data', (m: ProcessingResponse) => {
      if (!this.closed) events.onMessage(m);
    });
    this.call.on('status', (s: grpc.StatusObject) => {
      if (this.closed) return;
      this.closed = true;
      this.closedBy = 'server';
      this.serverStatus = { code: s.code, details: s.details };
      events.onStatus(s.code, s.details);
    });
    // Errors are reported through 'status' as well.
    this.call.on('error', () => undefined);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(m: ProcessingRequest): void {
    if (!this.closed) this.call.write(m);
  }

  /** Envoy's ProcessorStreamImpl::close: half-close, then reset at once. Returns true if it closed. */
  close(): boolean {
    if (this.closed) return false;
    this.closed = true;
    this.closedBy = 'envoy';
    this.call.end();
    this.call.cancel();
    return true;
  }
}

// grpc-js service definitions for the services gatehouse serves, built from the protobuf-es
// descriptors that buf generated: one message representation (protobuf-es), and the method paths
// and streaming kinds come from the protos, never typed by hand.
import { create, fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { Authorization } from '../gen/envoy/service/auth/v3/external_auth_pb.js';
import { ExternalProcessor } from '../gen/envoy/service/ext_proc/v3/external_processor_pb.js';
import { Health } from '../gen/grpc/health/v1/health_pb.js';

type MethodDefs<T extends GenServiceMethods> = {
  [K in keyof T]: MethodDefinition<MessageShape<T[K]['input']>, MessageShape<T[K]['output']>>;
};

/**
 * A request deserializer that never throws: bytes that do not decode become an empty marker message
 * whose decode error `undecodable` returns, so the adapter answers precisely (a stream's
 * INVALID_ARGUMENT, a denied Check) instead of grpc-js's generic INTERNAL.
 */
export function lenientDeserializer<D extends DescMessage>(schema: D): { readonly deserialize: (bytes: Buffer) => MessageShape<D>; readonly undecodable: (message: MessageShape<D>) => string | undefined } {
  const failures = new WeakMap<MessageShape<D>, string>();
  return {
    deserialize: (bytes) => {
      try {
        return fromBinary(schema, bytes, { readUnknownFields: false });
      } catch (error) {
        const marker = create(schema);
        failures.set(marker, error instanceof Error ? error.message : String(error));
        return marker;
      }
    },
    undecodable: (message) => failures.get(message),
  };
}

function serializer<D extends DescMessage>(schema: D): (m: MessageShape<D>) => Buffer {
  return (message) => {
    const bytes = toBinary(schema, message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<D extends DescMessage>(schema: D): (b: Buffer) => MessageShape<D> {
  // readUnknownFields: false — fields of newer Envoys (e.g. protocol_config) are skipped, not kept.
  return (bytes) => fromBinary(schema, bytes, { readUnknownFields: false });
}

export function grpcServiceDefinition<T extends GenServiceMethods>(service: GenService<T>): MethodDefs<T> & ServiceDefinition {
  const desc = service as unknown as DescService;
  const defs: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of desc.methods) {
    defs[method.localName] = {
      path: `/${desc.typeName}/${method.name}`,
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: serializer(method.input) as (m: unknown) => Buffer,
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output) as (m: unknown) => Buffer,
      responseDeserialize: deserializer(method.output),
      originalName: method.localName,
    };
  }
  return defs as MethodDefs<T> & ServiceDefinition;
}

export const extProcService = grpcServiceDefinition(ExternalProcessor);
export const authorizationService = grpcServiceDefinition(Authorization);
export const healthService = grpcServiceDefinition(Health);

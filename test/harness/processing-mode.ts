// Processing modes: mode_override (catalogue 2) and per-route config merging (catalogue 9).
import { create } from '@bufbuild/protobuf';
import type { GrpcService } from '../../src/gen/envoy/config/core/v3/grpc_service_pb.js';
import type { HeaderValue } from '../../src/gen/envoy/config/core/v3/base_pb.js';
import type { ExtProcPerRoute } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';
import {
  ProcessingModeSchema,
  ProcessingMode_HeaderSendMode as HeaderMode,
  type ProcessingMode,
} from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.js';

export function defaultMode(): ProcessingMode {
  return create(ProcessingModeSchema);
}

/**
 * Catalogue 2.4 (EP effectiveModeOverride): start from the FILTER-level mode; header and trailer
 * modes are replaced only when the override's value is not DEFAULT; body modes are always replaced.
 */
export function effectiveModeOverride(override: ProcessingMode, filterLevel: ProcessingMode | undefined): ProcessingMode {
  const base = filterLevel ?? defaultMode();
  return create(ProcessingModeSchema, {
    requestHeaderMode: override.requestHeaderMode !== HeaderMode.DEFAULT ? override.requestHeaderMode : base.requestHeaderMode,
    responseHeaderMode: override.responseHeaderMode !== HeaderMode.DEFAULT ? override.responseHeaderMode : base.responseHeaderMode,
    requestTrailerMode: override.requestTrailerMode !== HeaderMode.DEFAULT ? override.requestTrailerMode : base.requestTrailerMode,
    responseTrailerMode: override.responseTrailerMode !== HeaderMode.DEFAULT ? override.responseTrailerMode : base.responseTrailerMode,
    requestBodyMode: override.requestBodyMode,
    responseBodyMode: override.responseBodyMode,
  });
}

/** Catalogue 2.5/2.6 (AOM): exact enum equality on every field but request_header_mode. */
export function isAllowedOverride(mode: ProcessingMode, allowed: readonly ProcessingMode[]): boolean {
  if (allowed.length === 0) return true;
  return allowed.some(
    (a) =>
      a.responseHeaderMode === mode.responseHeaderMode &&
      a.requestBodyMode === mode.requestBodyMode &&
      a.responseBodyMode === mode.responseBodyMode &&
      a.requestTrailerMode === mode.requestTrailerMode &&
      a.responseTrailerMode === mode.responseTrailerMode,
  );
}

/** Catalogue 9.1 (EP allDisabledMode). */
export function allDisabledMode(): ProcessingMode {
  return create(ProcessingModeSchema, { requestHeaderMode: HeaderMode.SKIP, responseHeaderMode: HeaderMode.SKIP });
}

/** EP FilterConfigPerRoute. */
export interface MergedPerRoute {
  disabled: boolean;
  processingMode: ProcessingMode | undefined;
  grpcService: GrpcService | undefined;
  grpcInitialMetadata: HeaderValue[];
  untypedForwarding: string[] | undefined;
  typedForwarding: string[] | undefined;
  untypedReceiving: string[] | undefined;
}

function fromProto(c: ExtProcPerRoute): MergedPerRoute {
  const disabled = c.override.case === 'disabled' && c.override.value;
  const ov = c.override.case === 'overrides' ? c.override.value : undefined;
  const md = ov?.metadataOptions;
  return {
    disabled,
    processingMode: !disabled ? ov?.processingMode : undefined,
    grpcService: ov?.grpcService,
    grpcInitialMetadata: ov?.grpcInitialMetadata ?? [],
    untypedForwarding: md?.forwardingNamespaces !== undefined ? [...md.forwardingNamespaces.untyped] : undefined,
    typedForwarding: md?.forwardingNamespaces !== undefined ? [...md.forwardingNamespaces.typed] : undefined,
    untypedReceiving: md?.receivingNamespaces !== undefined ? [...md.receivingNamespaces.untyped] : undefined,
  };
}

/** Merge by key, the more specific value wins (EP mergeHeaderValues). */
export function mergeHeaderValues(into: HeaderValue[], more: readonly HeaderValue[]): HeaderValue[] {
  const out = [...into];
  for (const h of more) {
    const i = out.findIndex((d) => d.key === h.key);
    if (i >= 0) out[i] = h;
    else out.push(h);
  }
  return out;
}

/** Catalogue 9.8: configs ordered from least to most specific (virtual host → route). */
export function mergePerRoute(configs: readonly ExtProcPerRoute[]): MergedPerRoute | undefined {
  let merged: MergedPerRoute | undefined;
  for (const c of configs) {
    const more = fromProto(c);
    if (merged === undefined) {
      merged = more;
      continue;
    }
    const less: MergedPerRoute = merged;
    merged = {
      disabled: more.disabled,
      processingMode: more.disabled ? undefined : (more.processingMode ?? less.processingMode),
      grpcService: more.grpcService ?? less.grpcService,
      grpcInitialMetadata: mergeHeaderValues(less.grpcInitialMetadata, more.grpcInitialMetadata),
      untypedForwarding: more.untypedForwarding ?? less.untypedForwarding,
      typedForwarding: more.typedForwarding ?? less.typedForwarding,
      untypedReceiving: more.untypedReceiving ?? less.untypedReceiving,
    };
  }
  return merged;
}

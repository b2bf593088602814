// Reads the EnvoyFilter manifests in deploy/istio and turns their typed_config into the official
// Envoy filter config messages, so tests run gatehouse under exactly the config we ship.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromJson, type DescMessage, type JsonValue, type MessageShape } from '@bufbuild/protobuf';
import { parseAllDocuments } from 'yaml';
import { findPackageRoot } from '../../src/config/load.js';
import { ExternalProcessorSchema, type ExternalProcessor } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';
import { ExtAuthzSchema, type ExtAuthz } from '../../src/gen/envoy/extensions/filters/http/ext_authz/v3/ext_authz_pb.js';

// found from the package root, so this works from dist/ (the demo) as well as from the sources
export const DEPLOY_ISTIO = join(findPackageRoot(), 'deploy/istio');

interface EnvoyFilterPatch {
  applyTo?: string;
  patch?: { value?: { name?: string; typed_config?: Record<string, JsonValue>; response_headers_to_remove?: string[] } };
}

function envoyFilterPatches(file: string): EnvoyFilterPatch[] {
  const patches: EnvoyFilterPatch[] = [];
  for (const doc of parseAllDocuments(readFileSync(join(DEPLOY_ISTIO, file), 'utf8'))) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as { kind?: string; spec?: { configPatches?: EnvoyFilterPatch[] } };
    if (value.kind === 'EnvoyFilter') patches.push(...(value.spec?.configPatches ?? []));
  }
  return patches;
}

/** Every `typed_config` of an HTTP filter patch in the file, keyed by the filter name. */
export function typedConfigs(file: string): Map<string, Record<string, JsonValue>> {
  const out = new Map<string, Record<string, JsonValue>>();
  for (const patch of envoyFilterPatches(file)) {
    const v = patch.patch?.value;
    if (v?.name && v.typed_config) out.set(v.name, v.typed_config);
  }
  return out;
}

/** The route configuration's response_headers_to_remove the file's ROUTE_CONFIGURATION patches add. */
export function routeResponseHeadersToRemove(file: string): string[] {
  return envoyFilterPatches(file).filter((p) => p.applyTo === 'ROUTE_CONFIGURATION').flatMap((p) => p.patch?.value?.response_headers_to_remove ?? []);
}

/** Parses a typed_config with the proto named in its @type; unknown fields are an error. */
export function parseTypedConfig<D extends DescMessage>(schema: D, typedConfig: Record<string, JsonValue>): MessageShape<D> {
  const { '@type': type, ...fields } = typedConfig;
  if (type !== `type.googleapis.com/${schema.typeName}`) throw new Error(`typed_config is ${JSON.stringify(type)}, expected ${schema.typeName}`);
  return fromJson(schema, fields, { ignoreUnknownFields: false });
}

export function shippedExtProcConfig(): ExternalProcessor {
  const config = typedConfigs('envoyfilter-ext-proc.yaml').get('envoy.filters.http.ext_proc');
  if (!config) throw new Error('envoyfilter-ext-proc.yaml has no envoy.filters.http.ext_proc patch');
  return parseTypedConfig(ExternalProcessorSchema, config);
}

export function shippedExtAuthzConfig(): ExtAuthz {
  const config = typedConfigs('envoyfilter-ext-authz.yaml').get('envoy.filters.http.ext_authz');
  if (!config) throw new Error('envoyfilter-ext-authz.yaml has no envoy.filters.http.ext_authz patch');
  return parseTypedConfig(ExtAuthzSchema, config);
}

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
  patch?: { value?: { name?: string; typed_config?: Record<string, JsonValue> } };
}

/** Every `typed_config` of an HTTP filter patch in the file, keyed by the filter name. */
export function typedConfigs(file: string): Map<string, Record<string, JsonValue>> {
  const out = new Map<string, Record<string, JsonValue>>();
  for (const doc of parseAllDocuments(readFileSync(join(DEPLOY_ISTIO, file), 'utf8'))) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as { kind?: string; spec?: { configPatches?: EnvoyFilterPatch[] } };
    if (value.kind !== 'EnvoyFilter') continue;
    for (const patch of value.spec?.configPatches ?? []) {
      const v = patch.patch?.value;
      if (v?.name && v.typed_config) out.set(v.name, v.typed_config);
    }
  }
  return out;
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

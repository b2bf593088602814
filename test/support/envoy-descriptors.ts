// Official Envoy protos for typed_configs that src/gen does not carry (the HTTP connection manager,
// per-route filter configs): their import closure is copied from @grpc/grpc-js-xds's deps/ (as
// scripts/gen.mjs vendors the ones gatehouse speaks) and compiled with the repository's own
// `buf build` into a descriptor registry, so a test can decode any `typed_config` strictly by its
// @type without generating code for it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createFileRegistry, fromBinary, fromJson, type JsonValue, type Message, type Registry } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { findPackageRoot } from '../../src/config/load.js';

const require = createRequire(import.meta.url);
const XDS_DEPS = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const SEARCH_ROOTS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(XDS_DEPS, d));

/** The filter configs the deploy manifests use, as proto files; their imports come along. */
export const ENVOY_CONFIG_PROTOS = [
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/ext_proc/v3/ext_proc.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  // ROUTE_CONFIGURATION patches merge a RouteConfiguration fragment
  'envoy/config/route/v3/route.proto',
];

let cached: Registry | undefined;

/** A registry of every message in ENVOY_CONFIG_PROTOS and what they import (built once per process). */
export function envoyRegistry(): Registry {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-envoy-protos-'));
  try {
    const seen = new Set<string>();
    const queue = [...ENVOY_CONFIG_PROTOS];
    while (queue.length > 0) {
      const rel = queue.shift()!;
      if (seen.has(rel) || rel.startsWith('google/protobuf/')) continue;
      seen.add(rel);
      const from = SEARCH_ROOTS.map((r) => join(r, rel)).find((p) => existsSync(p));
      if (!from) throw new Error(`cannot find ${rel} under ${XDS_DEPS}`);
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      // the deps' validate.proto predates PGV's ignore_empty, which newer Envoy protos use in
      // their validation annotations (not part of the message shapes this decodes)
      const text = readFileSync(from, 'utf8');
      writeFileSync(join(dir, rel), text.replace(/\bignore_empty:\s*true\b/g, ''));
      for (const m of text.matchAll(/^import\s+(?:public\s+)?"([^"]+)";/gm)) queue.push(m[1]!);
    }
    writeFileSync(join(dir, 'buf.yaml'), 'version: v2\n');
    const buf = join(findPackageRoot(), 'node_modules/.bin/buf');
    const out = join(dir, 'image.binpb');
    execFileSync(buf, ['build', '-o', out], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    cached = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(out)));
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Decodes a typed_config by its @type, strictly: an unknown field or a wrong type throws. */
export function decodeTypedConfig(typedConfig: Record<string, JsonValue>): Message {
  const { '@type': type, ...fields } = typedConfig;
  if (typeof type !== 'string' || !type.startsWith('type.googleapis.com/')) throw new Error(`typed_config has no @type: ${JSON.stringify(typedConfig).slice(0, 200)}`);
  const registry = envoyRegistry();
  const schema = registry.getMessage(type.slice('type.googleapis.com/'.length));
  if (!schema) throw new Error(`no proto for ${type} (add its file to ENVOY_CONFIG_PROTOS)`);
  return fromJson(schema, fields, { ignoreUnknownFields: false, registry });
}

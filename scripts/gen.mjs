#!/usr/bin/env node
// Regenerates the typed protobuf code in src/gen from the protos in proto/.
//
// 1. Vendors the import closure of the Envoy APIs gatehouse speaks (ext_proc, ext_authz, their
//    filter configs for the Envoy stand-in) from @grpc/grpc-js-xds's deps/ into proto/vendor/,
//    pinned by that package's exact version (written to proto/vendor/VERSION).
// 2. Runs `buf generate` (offline, local protoc-gen-es plugin) with buf.gen.yaml.
//
// `node scripts/gen.mjs --out DIR` writes the generated code to DIR instead of src/gen and leaves
// proto/ untouched: the drift test uses it to compare against the committed code.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const xdsPkgDir = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const xdsVersion = JSON.parse(readFileSync(join(xdsPkgDir, 'package.json'), 'utf8')).version;
const PINNED_XDS_VERSION = '1.14.1';

/** The entry points; everything they import is vendored too. */
const ENTRY_PROTOS = [
  'envoy/service/ext_proc/v3/external_processor.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/extensions/filters/http/ext_proc/v3/ext_proc.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
];
const SEARCH_ROOTS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(xdsPkgDir, 'deps', d));
// google/protobuf/*.proto are buf's well-known types; they are not vendored.
const isWellKnown = (p) => p.startsWith('google/protobuf/');

const outArg = process.argv.indexOf('--out');
const outDir = outArg > 0 ? resolve(process.argv[outArg + 1]) : join(root, 'src/gen');
const checkOnly = outArg > 0;

if (!checkOnly) {
  if (xdsVersion !== PINNED_XDS_VERSION) {
    throw new Error(`@grpc/grpc-js-xds is ${xdsVersion}, gen is pinned to ${PINNED_XDS_VERSION}: update PINNED_XDS_VERSION deliberately`);
  }
  const vendorDir = join(root, 'proto/vendor');
  rmSync(vendorDir, { recursive: true, force: true });
  const seen = new Set();
  const queue = [...ENTRY_PROTOS];
  while (queue.length > 0) {
    const rel = queue.shift();
    if (seen.has(rel) || isWellKnown(rel)) continue;
    seen.add(rel);
    const from = SEARCH_ROOTS.map((r) => join(r, rel)).find((p) => existsSync(p));
    if (!from) throw new Error(`cannot find ${rel} under ${SEARCH_ROOTS.join(', ')}`);
    const text = readFileSync(from, 'utf8');
    mkdirSync(dirname(join(vendorDir, rel)), { recursive: true });
    cpSync(from, join(vendorDir, rel));
    for (const m of text.matchAll(/^import\s+(?:public\s+)?"([^"]+)";/gm)) queue.push(m[1]);
  }
  writeFileSync(join(vendorDir, 'VERSION'), `@grpc/grpc-js-xds ${xdsVersion} deps/ (envoy-api, xds, googleapis, protoc-gen-validate)\n${[...seen].sort().join('\n')}\n`);
  console.log(`vendored ${seen.size} protos from @grpc/grpc-js-xds ${xdsVersion}`);
}

const buf = join(dirname(require.resolve('@bufbuild/buf/package.json')), 'bin/buf');
const tmpOut = mkdtempSync(join(tmpdir(), 'gatehouse-gen-'));
execFileSync(buf, ['generate', 'proto', '--template', 'buf.gen.yaml', '--output', tmpOut], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH}` },
});
rmSync(outDir, { recursive: true, force: true });
cpSync(join(tmpOut, 'src/gen'), outDir, { recursive: true });
rmSync(tmpOut, { recursive: true, force: true });
console.log(`generated into ${outDir}`);

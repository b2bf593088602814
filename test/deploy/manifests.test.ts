// The EnvoyFilter manifests carry configs the official Envoy protos accept, with the settings
// gatehouse relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessingMode_BodySendMode, ProcessingMode_HeaderSendMode } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.js';
import { METADATA_NAMESPACE } from '../../src/envoy/decision-metadata.js';
import { DEPLOY_ISTIO, shippedExtAuthzConfig, shippedExtProcConfig, parseTypedConfig } from '../support/manifests.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { JsonValue } from '@bufbuild/protobuf';
import { decodeTypedConfig } from '../support/envoy-descriptors.js';
import { validateObject } from '../support/k8s-models.js';
import type { K8sObject } from '../support/helm.js';
import { ExternalProcessorSchema } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';

test('the ext_proc EnvoyFilter is a valid ExternalProcessor that lets gatehouse choose bodies per route and fails closed', () => {
  const config = shippedExtProcConfig();
  assert.equal(config.failureModeAllow, false);
  assert.equal(config.allowModeOverride, true, 'gatehouse asks for bodies per route via mode_override');
  assert.equal(config.processingMode?.requestHeaderMode, ProcessingMode_HeaderSendMode.SEND);
  assert.equal(config.processingMode?.responseHeaderMode, ProcessingMode_HeaderSendMode.SEND);
  assert.equal(config.processingMode?.requestBodyMode, ProcessingMode_BodySendMode.NONE);
  assert.deepEqual(config.metadataOptions?.receivingNamespaces?.untyped, [METADATA_NAMESPACE]);
  assert.ok(config.requestAttributes.includes('xds.route_name'));
  assert.equal(config.grpcService?.targetSpecifier.case, 'envoyGrpc');
  const envoyGrpc = config.grpcService?.targetSpecifier.case === 'envoyGrpc' ? config.grpcService.targetSpecifier.value : undefined;
  // Envoy would send the cluster name (outbound|9001||...) as :authority, which Node's HTTP/2
  // server refuses with RST_STREAM(PROTOCOL_ERROR): the stand-in found this.
  assert.match(envoyGrpc?.authority ?? '', /^[a-z0-9.-]+$/, 'envoy_grpc.authority is a plain host name');
  const timeoutMs = Number(config.messageTimeout?.seconds ?? 0n) * 1000 + (config.messageTimeout?.nanos ?? 0) / 1e6;
  assert.ok(timeoutMs > 150, `message_timeout ${timeoutMs} ms leaves room for the default 150 ms route budget`);
});

test('a typed_config with a field the proto does not know is refused', () => {
  assert.throws(() => parseTypedConfig(ExternalProcessorSchema, { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor', allow_mode_overide: true }), /allow_mode_overide/);
});

test('the ext_authz EnvoyFilter is a valid ExtAuthz that fails closed with 503 and sends raw headers', () => {
  const config = shippedExtAuthzConfig();
  assert.equal(config.failureModeAllow, false);
  assert.equal(config.statusOnError?.code, 503);
  assert.equal(config.encodeRawHeaders, true);
  assert.equal(config.services.case, 'grpcService');
  const grpcService = config.services.case === 'grpcService' ? config.services.value : undefined;
  const envoyGrpc = grpcService?.targetSpecifier.case === 'envoyGrpc' ? grpcService.targetSpecifier.value : undefined;
  assert.match(envoyGrpc?.authority ?? '', /^[a-z0-9.-]+$/, 'envoy_grpc.authority is a plain host name');
});

test('every typed_config in deploy/istio decodes strictly; ext_authz body routes get the whole body as bytes; Envoy\'s own defenses are on', () => {
  const configs: Record<string, JsonValue>[] = [];
  for (const file of readdirSync(DEPLOY_ISTIO).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(join(DEPLOY_ISTIO, file), 'utf8'))) {
      const o = doc.toJS() as { spec?: { configPatches?: { patch: { value: { typed_config?: Record<string, JsonValue>; typed_per_filter_config?: Record<string, Record<string, JsonValue>> } } }[] } };
      for (const p of o.spec?.configPatches ?? []) {
        if (p.patch.value.typed_config) configs.push(p.patch.value.typed_config);
        configs.push(...Object.values(p.patch.value.typed_per_filter_config ?? {}));
      }
    }
  }
  const decoded = configs.map((c) => ({ type: typeof c['@type'] === 'string' ? c['@type'] : '', message: decodeTypedConfig(c) as unknown as Record<string, unknown> }));
  const perRoute = decoded.filter((d) => d.type.endsWith('ExtAuthzPerRoute'));
  assert.ok(perRoute.length >= 1);
  for (const d of perRoute) {
    const body = (d.message['override'] as { value: { withRequestBody: { packAsBytes: boolean; allowPartialMessage: boolean } } }).value.withRequestBody;
    assert.equal(body.packAsBytes, true);
    assert.equal(body.allowPartialMessage, false);
  }
  const hcms = decoded.filter((d) => d.type.endsWith('HttpConnectionManager'));
  assert.equal(hcms.length, 2, 'both EnvoyFilters carry the defenses');
  for (const d of hcms) {
    assert.equal(d.message['normalizePath'], true);
    assert.equal(d.message['mergeSlashes'], true);
    assert.equal((d.message['commonHttpProtocolOptions'] as { headersWithUnderscoresAction: number }).headersWithUnderscoresAction, 1, 'REJECT_REQUEST');
  }
});

test('every EnvoyFilter in deploy/istio validates as Istio\'s EnvoyFilter; its ROUTE_CONFIGURATION patches decode strictly as a RouteConfiguration', () => {
  let routeConfigurations = 0;
  for (const file of readdirSync(DEPLOY_ISTIO).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(join(DEPLOY_ISTIO, file), 'utf8'))) {
      const o = doc.toJS() as K8sObject & { spec: { configPatches: { applyTo: string; patch: { value: Record<string, JsonValue> } }[] } };
      validateObject(o);
      for (const p of o.spec.configPatches.filter((c) => c.applyTo === 'ROUTE_CONFIGURATION')) {
        decodeTypedConfig({ '@type': 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration', ...p.patch.value });
        routeConfigurations++;
      }
    }
  }
  assert.equal(routeConfigurations, 1, 'the ext_authz EnvoyFilter removes gatehouse\'s headers from upstream responses');
});

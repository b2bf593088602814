// Attack class: Envoy's route name as an authority (docs/security.md "Route names"). A request whose
// xds.route_name attribute, forwarded metadata or ext_authz context extension names a weaker
// gatehouse route (`health`, no filters) is still decided on the route its own method, host and
// path match: an unsigned transfer is refused whatever the name says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import { CheckSettingsSchema, ExtAuthzPerRouteSchema } from '../../src/gen/envoy/extensions/filters/http/ext_authz/v3/ext_authz_pb.js';
import { MetadataSchema } from '../../src/gen/envoy/config/core/v3/base_pb.js';
import { ExtAuthzStandIn } from '../harness/ext-authz.js';
import { get } from '../harness/helpers.js';
import { RawExtProcStream, requestHeaders, type RequestInit } from '../support/extproc-client.js';
import { shippedExtAuthzConfig } from '../support/manifests.js';
import { AUTHORITY, signedWorld, TRANSFER } from '../support/signed-world.js';

const UNSIGNED_TRANSFER: [string, string][] = [[':method', 'POST'], [':path', '/api/v1/transfers'], [':authority', AUTHORITY], [':scheme', 'https'], ['content-type', 'application/json'], ['content-length', String(TRANSFER.length)]];

test('ext_proc: an xds.route_name or forwarded route_id naming `health` does not move an unsigned transfer off the signed route', async (t) => {
  const { e2e } = await signedWorld(t);
  const client = new grpc.Client(`127.0.0.1:${e2e.gatehouse.grpcPort}`, grpc.credentials.createInsecure());
  t.after(() => { client.close(); });
  const namings: RequestInit[] = [
    { ...requestHeaders(UNSIGNED_TRANSFER, false), attributes: { 'envoy.filters.http.ext_proc': { 'xds.route_name': 'health' } } },
    { ...requestHeaders(UNSIGNED_TRANSFER, false), metadataContext: create(MetadataSchema, { filterMetadata: { gatehouse: { route_id: 'health' } } }) },
  ];
  for (const naming of namings) {
    const stream = new RawExtProcStream(client);
    stream.send(naming);
    const answer = await stream.next(10_000);
    stream.closeLikeEnvoy();
    assert.equal(answer.response.case, 'immediateResponse', JSON.stringify(naming));
    const immediate = answer.response.case === 'immediateResponse' ? answer.response.value : undefined;
    assert.equal(immediate?.status?.code, 401);
    assert.equal(immediate?.details, 'gatehouse_signature_missing');
    assert.equal((answer.dynamicMetadata?.['gatehouse'] as Record<string, unknown> | undefined)?.['route_id'], 'pay', 'decided on the route the request matches');
  }
});

test('ext_authz: a context extension gatehouse_route_id naming `health` does not move an unsigned transfer off the signed route', async (t) => {
  const { e2e } = await signedWorld(t);
  const authz = new ExtAuthzStandIn({
    authzAddress: `127.0.0.1:${e2e.gatehouse.grpcPort}`,
    filter: shippedExtAuthzConfig(),
    upstream: { host: '127.0.0.1', port: e2e.upstream.port },
    perRoute: create(ExtAuthzPerRouteSchema, { override: { case: 'checkSettings', value: create(CheckSettingsSchema, { contextExtensions: { gatehouse_route_id: 'health' } }) } }),
  });
  t.after(() => { authz.close(); });
  const result = await authz.request({ method: 'POST', path: '/api/v1/transfers', authority: AUTHORITY, headers: [['content-type', 'application/json']], body: TRANSFER });
  assert.equal(result.outcome, 'denied');
  assert.equal(get(result.headers, 'x-gatehouse-reason'), 'signature_missing');
  assert.equal(result.upstreamRequest, undefined);
});

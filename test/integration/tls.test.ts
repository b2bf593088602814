// gRPC over TLS, optionally requiring Envoy's client certificate. Certificates are made in the test
// with openssl, never checked in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import { GatehouseServer } from '../../src/server.js';
import { healthService } from '../../src/envoy/grpc-services.js';
import { HealthCheckRequestSchema, HealthCheckResponse_ServingStatus, type HealthCheckResponse } from '../../src/gen/grpc/health/v1/health_pb.js';
import { makePkiWithSan } from '../support/pki.js';
import { RecordingTelemetry } from '../support/recording-telemetry.js';
import { testRoutes } from '../support/routes.js';

function check(client: grpc.Client): Promise<HealthCheckResponse> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      healthService.check.path,
      healthService.check.requestSerialize,
      healthService.check.responseDeserialize,
      create(HealthCheckRequestSchema, { service: '' }),
      (error, response) => { if (error) reject(error); else resolve(response!); },
    );
  });
}

test('with tls configured, gatehouse serves gRPC over TLS; with a CA it requires a client certificate', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pki-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  makePkiWithSan(dir);
  const f = (n: string) => join(dir, n);

  const tlsOnly = new GatehouseServer({ host: '127.0.0.1', port: 0, tls: { certFile: f('server.crt'), keyFile: f('server.key') }, routes: testRoutes([]), telemetry: new RecordingTelemetry() });
  const port = await tlsOnly.start();
  t.after(() => { tlsOnly.forceStop(); });
  const over = { 'grpc.ssl_target_name_override': 'localhost' };
  const good = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createSsl(readFileSync(f('ca.crt'))), over);
  assert.equal((await check(good)).status, HealthCheckResponse_ServingStatus.SERVING);
  good.close();
  const plaintext = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  await assert.rejects(check(plaintext), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);
  plaintext.close();

  const mtls = new GatehouseServer({ host: '127.0.0.1', port: 0, tls: { certFile: f('server.crt'), keyFile: f('server.key'), caFile: f('ca.crt') }, routes: testRoutes([]), telemetry: new RecordingTelemetry() });
  const mport = await mtls.start();
  t.after(() => { mtls.forceStop(); });
  const noCert = new grpc.Client(`127.0.0.1:${mport}`, grpc.credentials.createSsl(readFileSync(f('ca.crt'))), over);
  await assert.rejects(check(noCert), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);
  noCert.close();
  const withCert = new grpc.Client(`127.0.0.1:${mport}`, grpc.credentials.createSsl(readFileSync(f('ca.crt')), readFileSync(f('client.key')), readFileSync(f('client.crt'))), over);
  assert.equal((await check(withCert)).status, HealthCheckResponse_ServingStatus.SERVING);
  withCert.close();
});

test('the health service answers per served API, NOT_FOUND for others, and NOT_SERVING once draining', async (t) => {
  const server = new GatehouseServer({ host: '127.0.0.1', port: 0, routes: testRoutes([]), telemetry: new RecordingTelemetry() });
  const port = await server.start();
  t.after(() => { server.forceStop(); });
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.after(() => { client.close(); });
  const ask = (service: string) =>
    new Promise<HealthCheckResponse>((resolve, reject) => {
      client.makeUnaryRequest(healthService.check.path, healthService.check.requestSerialize, healthService.check.responseDeserialize, create(HealthCheckRequestSchema, { service }), (e, r) => { if (e) reject(e); else resolve(r!); });
    });
  assert.equal((await ask('envoy.service.ext_proc.v3.ExternalProcessor')).status, HealthCheckResponse_ServingStatus.SERVING);
  assert.equal((await ask('envoy.service.auth.v3.Authorization')).status, HealthCheckResponse_ServingStatus.SERVING);
  await assert.rejects(ask('nope'), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
  void server.drain(2000);
  // existing connection: either NOT_SERVING, or the connection is already going away
  const after: unknown = await ask('').catch((e: unknown) => e);
  if (after instanceof Error) assert.equal((after as grpc.ServiceError).code, grpc.status.UNAVAILABLE);
  else assert.equal((after as HealthCheckResponse).status, HealthCheckResponse_ServingStatus.NOT_SERVING);
});

// Where spans go: telemetry.otlpEndpoint and the OTEL_* variables, as the OpenTelemetry spec reads them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveTelemetryExport, tracesUrl, type Env } from './otlp-env.js';

const resolve = (telemetry: { otlpEndpoint?: string; sampleRatio?: number }, env: Env = {}) => resolveTelemetryExport(telemetry, env);
const value = (r: ReturnType<typeof resolve>) => {
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.value;
};
const error = (r: ReturnType<typeof resolve>): string => (r.ok ? assert.fail('expected an error') : r.error);

test('a base endpoint gets the traces path (docs/config.md\'s http://otel-collector:4318 used to post to / and get 404)', () => {
  assert.equal(tracesUrl('http://otel-collector:4318'), 'http://otel-collector:4318/v1/traces');
  assert.equal(tracesUrl('http://otel-collector:4318/'), 'http://otel-collector:4318/v1/traces');
  assert.equal(tracesUrl('https://otel.example.com/v1/traces'), 'https://otel.example.com/v1/traces', 'not twice');
  assert.equal(tracesUrl('https://gw.example.com/otlp'), 'https://gw.example.com/otlp/v1/traces', 'a base with a path keeps it');
  assert.equal(value(resolve({ otlpEndpoint: 'http://otel-collector:4318' })).otlp?.url, 'http://otel-collector:4318/v1/traces');
});

test('the OTEL_EXPORTER_OTLP_* variables: base and signal endpoints, headers, timeout; the config wins', () => {
  assert.equal(value(resolve({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).otlp?.url, 'http://collector:4318/v1/traces');
  // the signal-specific variable is the whole URL, used as it is, and beats the base
  assert.equal(value(resolve({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/custom' })).otlp?.url, 'http://b:4318/custom');
  assert.equal(value(resolve({ otlpEndpoint: 'http://cfg:4318' }, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' })).otlp?.url, 'http://cfg:4318/v1/traces');
  const v = value(resolve({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20abc, x-tenant=t1', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '2500' }));
  assert.deepEqual(v.otlp?.headers, { authorization: 'Bearer abc', 'x-tenant': 't1' });
  assert.equal(v.otlp?.timeoutMillis, 2500);
  assert.deepEqual(v.sources, ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT']);
  // nothing configured: ids propagate, nothing is exported
  assert.equal(value(resolve({})).otlp, undefined);
  // turned off by the standard switches
  assert.equal(value(resolve({ otlpEndpoint: 'http://c:4318' }, { OTEL_SDK_DISABLED: 'true' })).otlp, undefined);
  assert.equal(value(resolve({ otlpEndpoint: 'http://c:4318' }, { OTEL_TRACES_EXPORTER: 'none' })).otlp, undefined);
});

test('sampling: telemetry.sampleRatio, else OTEL_TRACES_SAMPLER and its argument', () => {
  assert.equal(value(resolve({ sampleRatio: 0.25 }, { OTEL_TRACES_SAMPLER: 'always_on' })).sampleRatio, 0.25);
  assert.equal(value(resolve({}, { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' })).sampleRatio, 0.1);
  assert.equal(value(resolve({}, { OTEL_TRACES_SAMPLER: 'traceidratio' })).sampleRatio, 1);
  assert.equal(value(resolve({}, { OTEL_TRACES_SAMPLER: 'always_off' })).sampleRatio, 0);
  assert.equal(value(resolve({})).sampleRatio, undefined);
});

test('a bad variable is refused naming it', () => {
  assert.match(error(resolve({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'otel-collector:4318' })), /^OTEL_EXPORTER_OTLP_ENDPOINT: "otel-collector:4318" is not an http\(s\) URL/);
  assert.match(error(resolve({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_HEADERS: 'novalue' })), /^OTEL_EXPORTER_OTLP_HEADERS: not a list of key=value/);
  assert.match(error(resolve({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })), /^OTEL_EXPORTER_OTLP_PROTOCOL=grpc: gatehouse exports OTLP over HTTP/);
  assert.match(error(resolve({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TIMEOUT: '1.5s' })), /^OTEL_EXPORTER_OTLP_TIMEOUT: "1\.5s" is not a positive whole number/);
  assert.match(error(resolve({}, { OTEL_TRACES_SAMPLER: 'jaeger_remote' })), /^OTEL_TRACES_SAMPLER=jaeger_remote: use one of/);
  assert.match(error(resolve({}, { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' })), /^OTEL_TRACES_SAMPLER_ARG: "2" is not a ratio/);
  assert.match(error(resolve({}, { OTEL_TRACES_EXPORTER: 'zipkin' })), /^OTEL_TRACES_EXPORTER=zipkin/);
});

// Where spans go, from the config and the OpenTelemetry SDK's standard variables, resolved once at
// start. telemetry.otlpEndpoint (or GATEHOUSE_OTLP_ENDPOINT) is a base URL like
// OTEL_EXPORTER_OTLP_ENDPOINT: the traces path /v1/traces is appended (docs/config.md's
// `http://otel-collector:4318` used to be posted to `/` and got 404). The signal-specific
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as it is, as the specification says.
// Spec: https://opentelemetry.io/docs/specs/otel/protocol/exporter/ and .../configuration/sdk-environment-variables/
import type { OtlpOptions } from './tracing.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface TelemetryExport {
  /** absent: trace context is propagated, no span is exported */
  readonly otlp?: OtlpOptions;
  /** share of new traces sampled */
  readonly sampleRatio?: number;
  /** where each setting came from, for the start-up log line */
  readonly sources: readonly string[];
}

export type TelemetryExportResult = { readonly ok: true; readonly value: TelemetryExport } | { readonly ok: false; readonly error: string };

const TRACES_PATH = '/v1/traces';

/** The first variable of `names` that is set and not empty, with its name. */
function first(env: Env, ...names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value !== undefined && value !== '') return { name, value };
  }
  return undefined;
}

/** A base URL with the traces path appended (once: a base already ending in /v1/traces is kept). */
export function tracesUrl(base: string): string {
  const trimmed = base.replace(/\/+$/, '');
  return trimmed.endsWith(TRACES_PATH) ? trimmed : `${trimmed}${TRACES_PATH}`;
}

function httpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/** `k=v,k2=v2` with percent-encoded values (W3C Baggage's format, as the spec says). */
function parseHeaders(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    const key = part.slice(0, eq).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) return undefined;
    try {
      out[key.toLowerCase()] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return out;
}

const SAMPLERS: Readonly<Record<string, 'ratio' | number>> = {
  always_on: 1,
  always_off: 0,
  traceidratio: 'ratio',
  parentbased_always_on: 1,
  parentbased_always_off: 0,
  parentbased_traceidratio: 'ratio',
};

/**
 * The exporter and sampler settings. Config beats the environment (an explicit file is the
 * operator's choice; OTEL_* are often injected cluster-wide); a bad variable is an error naming it.
 * gatehouse always follows an incoming trace's sampled flag (parent-based); the ratio applies to
 * traces it starts.
 */
export function resolveTelemetryExport(telemetry: { readonly otlpEndpoint?: string; readonly sampleRatio?: number }, env: Env): TelemetryExportResult {
  const sources: string[] = [];
  const disabled = first(env, 'OTEL_SDK_DISABLED');
  const exporter = first(env, 'OTEL_TRACES_EXPORTER');
  if (exporter && !['otlp', 'none'].includes(exporter.value)) return { ok: false, error: `${exporter.name}=${exporter.value}: gatehouse exports traces with otlp only (or none)` };
  const exportOff = disabled?.value.toLowerCase() === 'true' || exporter?.value === 'none';

  let url: string | undefined;
  if (telemetry.otlpEndpoint !== undefined) {
    url = tracesUrl(telemetry.otlpEndpoint);
    sources.push('telemetry.otlpEndpoint');
  } else {
    const signal = first(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    const base = first(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
    const chosen = signal ?? base;
    if (chosen) {
      if (!httpUrl(chosen.value)) return { ok: false, error: `${chosen.name}: ${JSON.stringify(chosen.value)} is not an http(s) URL` };
      url = signal ? signal.value : tracesUrl(chosen.value);
      sources.push(chosen.name);
    }
  }

  const protocol = first(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL');
  if (url !== undefined && protocol && !['http/json', 'http/protobuf'].includes(protocol.value)) {
    return { ok: false, error: `${protocol.name}=${protocol.value}: gatehouse exports OTLP over HTTP (http/json; collectors take it on the same port as http/protobuf, 4318), not ${protocol.value}` };
  }
  const headersVar = first(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'OTEL_EXPORTER_OTLP_HEADERS');
  let headers: Record<string, string> | undefined;
  if (headersVar) {
    headers = parseHeaders(headersVar.value);
    if (headers === undefined) return { ok: false, error: `${headersVar.name}: not a list of key=value pairs separated by commas (values percent-encoded)` };
    sources.push(headersVar.name);
  }
  const timeoutVar = first(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT');
  let timeoutMillis: number | undefined;
  if (timeoutVar) {
    timeoutMillis = Number(timeoutVar.value);
    if (!Number.isInteger(timeoutMillis) || timeoutMillis <= 0) return { ok: false, error: `${timeoutVar.name}: ${JSON.stringify(timeoutVar.value)} is not a positive whole number of milliseconds` };
    sources.push(timeoutVar.name);
  }

  let sampleRatio = telemetry.sampleRatio;
  if (sampleRatio !== undefined) sources.push('telemetry.sampleRatio');
  else {
    const sampler = first(env, 'OTEL_TRACES_SAMPLER');
    if (sampler) {
      const kind = SAMPLERS[sampler.value];
      if (kind === undefined) return { ok: false, error: `${sampler.name}=${sampler.value}: use one of ${Object.keys(SAMPLERS).join(', ')}` };
      if (kind === 'ratio') {
        const arg = first(env, 'OTEL_TRACES_SAMPLER_ARG');
        sampleRatio = arg ? Number(arg.value) : 1;
        if (!Number.isFinite(sampleRatio) || sampleRatio < 0 || sampleRatio > 1) return { ok: false, error: `OTEL_TRACES_SAMPLER_ARG: ${JSON.stringify(arg?.value)} is not a ratio between 0 and 1` };
      } else sampleRatio = kind;
      sources.push(sampler.name);
    }
  }

  const otlp: OtlpOptions | undefined = url === undefined || exportOff
    ? undefined
    : { url, ...(headers ? { headers } : {}), ...(timeoutMillis === undefined ? {} : { timeoutMillis }) };
  return { ok: true, value: { ...(otlp ? { otlp } : {}), ...(sampleRatio === undefined ? {} : { sampleRatio }), sources } };
}

// The gRPC server: ext_proc, ext_authz and grpc.health.v1 on one port, h2c unless TLS is configured.
// Owns the drain: once draining, health says NOT_SERVING, new streams are refused with UNAVAILABLE
// and open ones finish within the grace period.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { HealthService } from './envoy/health.js';
import { authorizationServiceDefinition, extAuthzHandler } from './envoy/extauthz.js';
import { extProcServiceDefinition } from './envoy/extproc-answers.js';
import { extProcHandler, type StreamLimits } from './envoy/extproc.js';

const DEFAULT_STREAMS_PER_CONNECTION = 1000;

/**
 * Envoy ends every ext_proc stream it is done with by a half-close and a reset (envoy-behaviours
 * 10.4): one RST_STREAM per HTTP request. Node's guard against rapid-reset floods (CVE-2023-44487)
 * allows a burst of 1,000 and then 33 a second per connection, and past it closes the whole
 * connection with INTERNAL_ERROR: every request in flight on it gets Envoy's 500 (or passes under
 * failure_mode_allow). Measured here: the 1,034th request on one connection failed. The limit is
 * raised far above what one connection's requests can produce; concurrent streams stay bounded by
 * envoy.maxStreams and maxStreamsPerConnection, and only Envoy reaches this port (the chart's
 * NetworkPolicy and STRICT mTLS).
 */
const ENVOY_STREAM_RESETS = { streamResetBurst: 100_000, streamResetRate: 100_000 } as const;
import type { RoutesSource } from './pipeline/routing.js';
import type { Telemetry } from './telemetry/types.js';
import type { DenialObserver } from './security/index.js';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** when set, clients must present a certificate signed by this CA (mTLS between Envoy and gatehouse) */
  readonly caFile?: string;
}

export interface GatehouseServerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: TlsFiles;
  readonly routes: RoutesSource;
  readonly telemetry: Telemetry;
  /** told of every denial, by both adapters */
  readonly onDenial?: DenialObserver;
  /** bounds on streams (ext_proc) and concurrent calls per connection */
  readonly limits?: StreamLimits & { readonly maxStreamsPerConnection: number };
}

export class GatehouseServer {
  private readonly server: grpc.Server;
  private accepting = true;
  private readonly health = new HealthService(() => this.accepting);
  boundPort = 0;

  constructor(private readonly options: GatehouseServerOptions) {
    this.server = new grpc.Server({
      // channelz stays on (grpc.enable_channelz): grpc-js 1.14 tracks the sessions that tryShutdown
      // and forceShutdown close only when it is, so without it a drain never closes Envoy's
      // connections and a forced stop leaves them open
      // Envoy keeps long-lived HTTP/2 connections to its processors; allow its keepalive pings.
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 10_000,
      // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: Envoy's connection pool opens another connection beyond it
      'grpc.max_concurrent_streams': options.limits?.maxStreamsPerConnection ?? DEFAULT_STREAMS_PER_CONNECTION,
    });
    // grpc-js builds its HTTP/2 server from this object when it binds and has no option for these
    const http2Options = (this.server as unknown as { commonServerOptions?: Record<string, unknown> }).commonServerOptions;
    if (http2Options === undefined) throw new Error('@grpc/grpc-js no longer exposes commonServerOptions: the stream-reset limit for Envoy (ENVOY_STREAM_RESETS in src/server.ts) cannot be set');
    Object.assign(http2Options, ENVOY_STREAM_RESETS);
    const common = { routes: options.routes, telemetry: options.telemetry, accepting: () => this.accepting, ...(options.onDenial ? { onDenial: options.onDenial } : {}) };
    this.server.addService(extProcServiceDefinition, { process: extProcHandler({ ...common, ...(options.limits ? { limits: options.limits } : {}) }) });
    this.server.addService(authorizationServiceDefinition, { check: extAuthzHandler(common) });
    this.health.addTo(this.server);
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  async start(): Promise<number> {
    const credentials = this.options.tls
      ? grpc.ServerCredentials.createSsl(
          this.options.tls.caFile ? readFileSync(this.options.tls.caFile) : null,
          [{ cert_chain: readFileSync(this.options.tls.certFile), private_key: readFileSync(this.options.tls.keyFile) }],
          this.options.tls.caFile !== undefined,
        )
      : grpc.ServerCredentials.createInsecure();
    this.boundPort = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`${this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host}:${this.options.port}`, credentials, (error, port) => {
        if (error) reject(error);
        else resolve(port);
      });
    });
    return this.boundPort;
  }

  /**
   * Stops taking new streams at once and lets open ones finish; after `graceMs` whatever is still
   * open is cancelled. Resolves with whether the drain finished in time.
   */
  async drain(graceMs: number): Promise<boolean> {
    this.accepting = false;
    this.health.draining();
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve(false);
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  forceStop(): void {
    this.server.forceShutdown();
  }
}

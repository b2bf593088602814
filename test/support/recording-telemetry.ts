// A Telemetry for adapter tests that records what the adapters report, so tests can assert the
// access-log entries, errors and stream counts a request produced.
import pino from 'pino';
import type { AccessLogEntry, ErrorKind, Metrics, Protocol, RequestSpan, Telemetry, Tracing } from '../../src/telemetry/types.js';
import type { Phase } from '../../src/pipeline/types.js';

export class RecordingTelemetry implements Telemetry {
  readonly entries: AccessLogEntry[] = [];
  readonly errors: { kind: ErrorKind; routeId: string }[] = [];
  readonly phases: { routeId: string; phase: Phase; seconds: number }[] = [];
  readonly warnings: unknown[] = [];
  inFlight: Record<Protocol, number> = { ext_proc: 0, ext_authz: 0 };
  private readonly waiters: (() => void)[] = [];

  readonly logger = pino({ level: 'warn' }, {
    write: (line: string) => {
      this.warnings.push(JSON.parse(line));
    },
  });

  readonly metrics: Metrics = {
    streamOpened: (p) => { this.inFlight[p]++; },
    streamClosed: (p) => { this.inFlight[p]--; },
    requestCompleted: () => undefined,
    phaseDuration: (routeId, phase, seconds) => { this.phases.push({ routeId, phase, seconds }); },
    error: (kind, routeId) => { this.errors.push({ kind, routeId }); },
    configReload: () => undefined,
    clientRegistryReload: () => undefined,
    render: () => Promise.resolve(''),
    contentType: 'text/plain',
  };

  readonly tracing: Tracing = {
    startRequestSpan: (): RequestSpan => ({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      setAttribute: () => undefined,
      end: () => undefined,
    }),
    shutdown: () => Promise.resolve(),
  };

  accessLog(entry: AccessLogEntry): void {
    this.entries.push(entry);
    for (const w of this.waiters.splice(0)) w();
  }

  /** resolves once `count` access-log entries exist (bounded by the caller's test timeout) */
  async entriesAtLeast(count: number, timeoutMs = 2000): Promise<AccessLogEntry[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.entries.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} access-log entries, have ${this.entries.length}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 20);
      });
    }
    return this.entries;
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

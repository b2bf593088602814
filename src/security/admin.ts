// The admin API on the admin listener: list, disable and re-enable accounts, look up and revoke
// devices, and this replica's recent security events. Authentication is a bearer token read from `admin.tokenFile` on every call (a
// rotated file takes effect at once, no restart); without `admin:` in the config every call is refused
// (403 admin_api_disabled). Every call, refused or not, writes one `admin_audit` line naming what it
// was about (subject, device) as soon as the call said it, whatever the outcome. A source that sends
// wrong tokens is throttled: past FAILED_TOKENS_PER_SOURCE failures within the window, its calls are
// answered 429 too_many_attempts with Retry-After, the right token included, until the window passes.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { Registry, type Counter } from 'prom-client';
import { sendJson, type AdminHandler } from '../admin/server.js';
import { HEADER } from '../pipeline/headers.js';
import type { AccountStatus, DeviceRegistry, StoredDevice, StoreFailure } from '../stores/types.js';
import { METRIC } from '../telemetry/metric-names.js';
import { CounterFamily } from '../telemetry/metrics.js';
import type { DisableRules } from './rules.js';
import type { SecurityEventSink } from './sink.js';

/** `msg` of the audit line */
export const ADMIN_AUDIT_MESSAGE = 'admin_audit';
/** `by` of an account disabled through the admin API */
export const ADMIN_AUTHOR = 'admin-api';

const MAX_BODY_BYTES = 4096;
const MAX_SUBJECT_LENGTH = 256;
const MAX_REASON_LENGTH = 200;
/** a device id is the device key's JWK thumbprint (RFC 7638, SHA-256: 43 base64url characters) */
const DEVICE_ID = /^[A-Za-z0-9_-]{1,128}$/;
const DEFAULT_LIST_LIMIT = 100;
const MAX_LIST_LIMIT = 1000;
/** failed bearer tokens one source may send within FAILED_TOKEN_WINDOW_MS before it is throttled */
export const FAILED_TOKENS_PER_SOURCE = 10;
export const FAILED_TOKEN_WINDOW_MS = 60_000;
/** sources remembered at most (the oldest is forgotten first): bounded whatever the callers */
const MAX_TRACKED_SOURCES = 10_000;

/**
 * Failed token attempts per source in a sliding window. In the process: each replica throttles its
 * own admin listener, which is enough against guessing (a 16+ character token, 10 tries a minute).
 */
export class FailedTokenThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly now: () => number) {}

  /** seconds until `source` may try again, or 0 when it may now */
  retryAfterSeconds(source: string): number {
    const recent = this.recent(source);
    if (recent.length < FAILED_TOKENS_PER_SOURCE) return 0;
    return Math.max(1, Math.ceil((recent[recent.length - FAILED_TOKENS_PER_SOURCE]! + FAILED_TOKEN_WINDOW_MS - this.now()) / 1000));
  }

  failed(source: string): void {
    const recent = this.recent(source);
    recent.push(this.now());
    // keep what can still matter: the last FAILED_TOKENS_PER_SOURCE failures
    if (recent.length > FAILED_TOKENS_PER_SOURCE) recent.splice(0, recent.length - FAILED_TOKENS_PER_SOURCE);
    this.failures.delete(source);
    if (this.failures.size >= MAX_TRACKED_SOURCES) {
      const oldest = this.failures.keys().next();
      if (oldest.done !== true) this.failures.delete(oldest.value);
    }
    this.failures.set(source, recent);
  }

  private recent(source: string): number[] {
    const cutoff = this.now() - FAILED_TOKEN_WINDOW_MS;
    return (this.failures.get(source) ?? []).filter((at) => at > cutoff);
  }
}

export interface AdminApiOptions {
  /** absent: the API is off and refuses every call */
  readonly tokenFile: string | undefined;
  readonly accounts: AccountStatus;
  readonly devices: DeviceRegistry;
  readonly rules: DisableRules;
  readonly sink: SecurityEventSink;
  readonly logger: Logger;
  /** where gatehouse_admin_api_calls_total goes (gatehouse's registry); a private one when absent */
  readonly registry?: Registry;
  readonly now?: () => number;
}

/** the admin API's actions: the audit line's `action` and the metric's label */
type AdminAction = 'accounts.get' | 'accounts.disable' | 'accounts.enable' | 'devices.get' | 'devices.revoke' | 'security_events.recent';
/** the writes an operator makes: their `ok` series exist from start, so a dashboard shows 0, not nothing */
const ADMIN_WRITES: readonly AdminAction[] = ['accounts.disable', 'accounts.enable', 'devices.revoke'];

export type ApiRoutes = ReadonlyMap<string, { readonly methods: readonly string[]; readonly handler: AdminHandler }>;

/** Reads a token file: the whole file without surrounding whitespace. */
export function readToken(file: string): { ok: true; token: string } | { ok: false; message: string } {
  try {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length < 16) return { ok: false, message: `${file}: the token must be at least 16 characters` };
    return { ok: true, token };
  } catch (error) {
    return { ok: false, message: `${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` };
  }
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        // answer now; the rest of the body is read and dropped, so the client gets the 413
        reject(new HttpError(413, 'body_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes`));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
      } catch {
        reject(new HttpError(400, 'bad_request', 'the body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

function stringField(body: unknown, name: string, max: number, required: boolean): string | undefined {
  const value = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>)[name] : undefined;
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw new HttpError(400, 'bad_request', `${name} must be a string of 1-${max} characters`);
  }
  return value;
}

export function adminApiRoutes(options: AdminApiOptions): ApiRoutes {
  const now = options.now ?? Date.now;
  const throttle = new FailedTokenThrottle(now);
  // labels from fixed lists only: the actions above, and `ok` or an HttpError code of this file
  const calls = new CounterFamily(METRIC.adminApiCalls, 'Admin API calls, by action (accounts.disable, devices.revoke, ...) and result (ok, or the error code answered).', ['action', 'result'], 200);
  // prom-client's typings only admit its own classes; the Registry reads name/help/type/get()
  (options.registry ?? new Registry()).registerMetric(calls as unknown as Counter);
  for (const action of ADMIN_WRITES) calls.child([action, 'ok']);

  /** the caller's token id (a hash prefix, for the audit) when the bearer token matches; throws otherwise */
  function authenticate(req: IncomingMessage, source: string): string {
    if (options.tokenFile === undefined) throw new HttpError(403, 'admin_api_disabled', 'the admin API is off: configure admin.tokenFile');
    // before the token is compared: a throttled source learns nothing, not even that it guessed right
    const wait = throttle.retryAfterSeconds(source);
    if (wait > 0) throw new HttpError(429, 'too_many_attempts', `too many wrong tokens from this address: retry after ${wait} s`, { [HEADER.retryAfter]: String(wait) });
    const expected = readToken(options.tokenFile);
    if (!expected.ok) {
      options.logger.error({ error: expected.message }, 'admin token file unreadable: the admin API refuses every call');
      throw new HttpError(503, 'admin_token_unavailable', 'the admin token cannot be read');
    }
    const header = req.headers.authorization ?? '';
    const match = /^Bearer +(\S+)\s*$/i.exec(header);
    if (match === null) {
      throttle.failed(source);
      throw new HttpError(401, 'unauthorized', 'a bearer token is required');
    }
    // equal-length digests: the comparison takes the same time whatever the token's length
    if (!timingSafeEqual(sha256(match[1]!), sha256(expected.token))) {
      throttle.failed(source);
      throw new HttpError(401, 'unauthorized', 'the bearer token is wrong');
    }
    return sha256(expected.token).toString('hex').slice(0, 8);
  }

  /** `run` may add to `audit` before it throws, so a refused call names what it was about */
  function handle(action: AdminAction, run: (req: IncomingMessage, url: URL, audit: Record<string, unknown>) => Promise<{ status: number; body: object; audit: Record<string, unknown> }>): AdminHandler {
    return async (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://admin.invalid');
      const source = req.socket.remoteAddress ?? 'unknown';
      const audit: Record<string, unknown> = { action, method: req.method, source };
      try {
        audit['token_id'] = authenticate(req, source);
        const answer = await run(req, url, audit);
        Object.assign(audit, answer.audit, { status: answer.status, result: 'ok' });
        options.logger.info(audit, ADMIN_AUDIT_MESSAGE);
        calls.child([action, 'ok']).value += 1;
        sendJson(res, answer.status, answer.body);
      } catch (error) {
        const known = error instanceof HttpError ? error : new HttpError(500, 'internal_error', 'the admin call failed');
        Object.assign(audit, { status: known.status, result: known.code, ...(error instanceof HttpError ? {} : { err: error }) });
        options.logger.warn(audit, ADMIN_AUDIT_MESSAGE);
        calls.child([action, known.code]).value += 1;
        sendJson(res, known.status, { error: known.code, message: known.message }, { ...known.headers, ...(known.status === 401 ? { [HEADER.wwwAuthenticate]: 'Bearer realm="gatehouse-admin"' } : {}) });
      }
    };
  }

  const storeError = (what: string, failure: { reason: string; detail: string }): HttpError =>
    new HttpError(503, 'store_unavailable', `${what}: ${failure.reason} (${failure.detail})`);

  const deviceId = (value: string | null | undefined): string => {
    if (value === null || value === undefined || !DEVICE_ID.test(value)) throw new HttpError(400, 'bad_request', 'the device id must be 1-128 base64url characters (the device key thumbprint)');
    return value;
  };
  const deviceNotFound = (id: string): HttpError => new HttpError(404, 'device_not_found', `no device ${id} is enrolled`);
  /** a record that does not parse is not an outage: say so (500), the filters refuse it meanwhile */
  const deviceReadError = (failure: StoreFailure): HttpError =>
    failure.reason === 'corrupt' ? new HttpError(500, 'device_record_corrupt', `devices: ${failure.detail}`) : storeError('devices', failure);
  /** what an operator may see of a device: no key material beyond its id (the signing key's thumbprint) */
  const deviceView = (stored: StoredDevice): Record<string, unknown> => ({
    deviceId: stored.device.deviceId,
    subject: stored.device.subject,
    integrity: stored.device.integrityLevel,
    appId: stored.device.appId,
    algorithm: stored.device.algorithm,
    e2ee: stored.device.e2eePublicKey !== undefined,
    // enrolledAt is stored in Unix seconds, revokedAt in Unix ms: ISO strings leave no doubt
    enrolledAt: new Date(stored.device.enrolledAt * 1000).toISOString(),
    revoked: stored.revokedAt !== undefined,
    revokedAt: stored.revokedAt === undefined ? null : new Date(stored.revokedAt).toISOString(),
  });

  return new Map([
    [
      '/admin/accounts',
      {
        methods: ['GET'],
        handler: handle('accounts.get', async (_req, url, audit) => {
          const subject = url.searchParams.get('subject');
          if (subject !== null) {
            audit['subject'] = subject.slice(0, MAX_SUBJECT_LENGTH);
            if (subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH) throw new HttpError(400, 'bad_request', `subject must be 1-${MAX_SUBJECT_LENGTH} characters`);
            const found = await options.accounts.isDisabled(subject);
            if (!found.ok) throw storeError('accounts', found);
            return { status: 200, body: { subject, disabled: found.disabled ?? null }, audit: { subject } };
          }
          const limitText = url.searchParams.get('limit');
          const limit = limitText === null ? DEFAULT_LIST_LIMIT : Number(limitText);
          if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw new HttpError(400, 'bad_request', `limit must be an integer 1-${MAX_LIST_LIMIT}`);
          const listed = await options.accounts.list(limit);
          if (!listed.ok) throw storeError('accounts', listed);
          return { status: 200, body: { accounts: listed.accounts, truncated: listed.truncated }, audit: { count: listed.accounts.length } };
        }),
      },
    ],
    [
      '/admin/accounts/disable',
      {
        methods: ['POST'],
        handler: handle('accounts.disable', async (req, _url, audit) => {
          const body = await readBody(req);
          const subject = stringField(body, 'subject', MAX_SUBJECT_LENGTH, true)!;
          audit['subject'] = subject;
          const reason = stringField(body, 'reason', MAX_REASON_LENGTH, true)!;
          audit['reason'] = reason;
          const written = await options.accounts.disable(subject, reason, ADMIN_AUTHOR, now());
          if (!written.ok) throw storeError('accounts', written);
          return { status: 200, body: { subject, disabled: true }, audit: { subject, reason } };
        }),
      },
    ],
    [
      '/admin/accounts/enable',
      {
        methods: ['POST'],
        handler: handle('accounts.enable', async (req, _url, audit) => {
          const body = await readBody(req);
          const subject = stringField(body, 'subject', MAX_SUBJECT_LENGTH, true)!;
          audit['subject'] = subject;
          const reason = stringField(body, 'reason', MAX_REASON_LENGTH, false);
          if (reason !== undefined) audit['reason'] = reason;
          const changed = await options.accounts.enable(subject);
          if (!changed.ok) throw storeError('accounts', changed);
          // done, whatever follows: the audit says the account was re-enabled
          Object.assign(audit, { enabled: true, was_disabled: changed.existed });
          // the rule windows start empty, or the next event would disable the account again at once
          const cleared = await options.rules.clear(subject);
          if (!cleared.ok) {
            audit['windows_cleared'] = false;
            throw new HttpError(503, 'store_unavailable', `the account is enabled, but its rule windows could not be cleared (${cleared.reason}: ${cleared.detail}): call again, or the next event may disable it at once`);
          }
          return { status: 200, body: { subject, enabled: true, wasDisabled: changed.existed }, audit: { subject, was_disabled: changed.existed, ...(reason === undefined ? {} : { reason }) } };
        }),
      },
    ],
    [
      '/admin/devices',
      {
        methods: ['GET'],
        handler: handle('devices.get', async (_req, url, audit) => {
          const id = deviceId(url.searchParams.get('id'));
          audit['device'] = id;
          const found = await options.devices.get(id, { fresh: true });
          if (!found.ok) throw deviceReadError(found);
          if (found.device === undefined) throw deviceNotFound(id);
          return { status: 200, body: deviceView(found.device), audit: { device: id, subject: found.device.device.subject } };
        }),
      },
    ],
    [
      '/admin/devices/revoke',
      {
        methods: ['POST'],
        handler: handle('devices.revoke', async (req, _url, audit) => {
          const body = await readBody(req);
          const id = deviceId(stringField(body, 'deviceId', 128, true));
          audit['device'] = id;
          const reason = stringField(body, 'reason', MAX_REASON_LENGTH, true)!;
          audit['reason'] = reason;
          // idempotent: a revoked device keeps its first revokedAt (the store writes it once)
          const changed = await options.devices.revoke(id, now());
          if (!changed.ok) throw storeError('devices', changed);
          if (!changed.existed) throw deviceNotFound(id);
          // read back from the store: the answer shows what every replica's filters will see
          const found = await options.devices.get(id, { fresh: true });
          const view = found.ok && found.device !== undefined ? deviceView(found.device) : { deviceId: id, revoked: true };
          return { status: 200, body: view, audit: { device: id, reason, ...(found.ok && found.device !== undefined ? { subject: found.device.device.subject } : {}) } };
        }),
      },
    ],
    [
      '/admin/security-events',
      {
        methods: ['GET'],
        handler: handle('security_events.recent', () => Promise.resolve({ status: 200, body: { events: options.sink.recent(), buffered: options.sink.pending }, audit: {} })),
      },
    ],
  ]);
}

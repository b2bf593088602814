// `npm run demo`: fraud detection. A replayed request and tampered bodies of one account become
// security events at trust `credential`: anyone who saw one request can produce them, so no rule
// counts them and the customer is still served. Then the customer reports a second phone stolen: the
// operator revokes it through the admin API, its key keeps signing, and the dev config's rule
// `revoked-device` (3 verified device_revoked within 60 s) disables the account; the customer's own
// phone is refused 403 account_disabled until the operator re-enables the account (bearer token).
// Its own subject (user-7), so the other scenarios' refusals do not count towards it.
import type { RunningGatehouse } from '../src/gatehouse.js';
import type { ClientRequest, ExtProcStandIn } from '../test/harness/ext-proc.js';
import { devSignedApp } from './dev-signing.js';

const tty = process.stdout.isTTY;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const green = (s: string) => (tty ? `\x1b[32m${s}\x1b[0m` : s);
const red = (s: string) => (tty ? `\x1b[31m${s}\x1b[0m` : s);
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);

export const FRAUD_DEMO_SUBJECT = 'user-7';

export async function fraudScenario(envoy: ExtProcStandIn, gatehouse: RunningGatehouse, adminToken: string, n: number, print: (line: string) => void): Promise<void> {
  // the app enrolls through the gateway's device endpoints (dev config), for its own subject
  print(bold(`${n}. Fraud detection: replays and tampering are reported, never disable; a stolen, revoked phone that keeps signing does; an operator re-enables (route transfers-signed, admin API)`) + dim('  [ext_proc]'));
  print(dim('   each suspicious refusal is a security event (log, metrics, and the FDS Redis stream with kind: redis); rules count only trust verified'));
  const app = await devSignedApp(envoy, FRAUD_DEMO_SUBJECT);
  const stolenPhone = await devSignedApp(envoy, FRAUD_DEMO_SUBJECT);
  const body = '{"amount":"10.00","currency":"KRW","to":"acct-7"}';
  const genuine = async (id: string, signer = app): Promise<ClientRequest> => {
    const signed = await signer.sign({ method: 'POST', authority: 'api.example.com', path: '/api/v1/transfers', body: Buffer.from(body) });
    return { method: 'POST', path: '/api/v1/transfers', authority: 'api.example.com', headers: [...Object.entries(signed), ['content-type', 'application/json'], ['x-request-id', id]], body };
  };
  const send = async (what: string, request: ClientRequest): Promise<void> => {
    const answer = await envoy.request(request);
    const reason = answer.headers.find(([k]) => k === 'x-gatehouse-reason')?.[1];
    const outcome = answer.upstreamRequest ? 'upstream reached' : `${reason ?? '?'}, upstream never reached`;
    print(`   ${what.padEnd(44)} ← ${answer.status < 400 ? green(String(answer.status)) : red(String(answer.status))} ${dim(outcome)}`);
  };
  const admin = async (method: 'GET' | 'POST', path: string, token: string | undefined, payload?: object): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await fetch(`http://127.0.0.1:${gatehouse.adminPort}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  /** the rule's work is off the request path: wait (bounded) for the queue to settle */
  const settled = async (): Promise<void> => {
    for (let i = 0; i < 100 && gatehouse.security.sink.pending > 0; i++) await new Promise((r) => setTimeout(r, 10));
  };

  const original = await genuine('demo-fraud-ok');
  await send(`${FRAUD_DEMO_SUBJECT} signs a transfer`, original);
  await send('the same request replayed', { ...original, headers: original.headers!.map(([k, v]) => [k, k === 'x-request-id' ? 'demo-fraud-replay' : v]) });
  await send('amount changed in transit (1)', { ...(await genuine('demo-fraud-tamper-1')), body: body.replace('10.00', '9999.00') });
  await send('amount changed in transit (2)', { ...(await genuine('demo-fraud-tamper-2')), body: body.replace('10.00', '8888.00') });
  await settled();

  const showEvents = async (codes: readonly string[]): Promise<void> => {
    const events = (await admin('GET', '/admin/security-events', adminToken)).body['events'] as Record<string, string>[] | undefined;
    for (const event of (events ?? []).filter((e) => e['subject'] === FRAUD_DEMO_SUBJECT && codes.includes(e['code'] ?? ''))) {
      print(dim(`      security_event code=${event['code']} subject=${event['subject']} trust=${event['trust']} decision_id=${event['decision_id']} route=${event['route']}`));
    }
  };
  const showAccount = async (): Promise<void> => {
    const status = await admin('GET', `/admin/accounts?subject=${FRAUD_DEMO_SUBJECT}`, adminToken);
    const record = status.body['disabled'] as { by?: string; reason?: string } | null | undefined;
    print(`   GET /admin/accounts?subject=${FRAUD_DEMO_SUBJECT}                ← ${status.status} ${record ? red(`disabled by ${record.by ?? '?'}: ${record.reason ?? '?'}`) : green('enabled')}`);
  };
  await showEvents(['signature_replayed', 'digest_mismatch']);
  print(dim('   trust credential: anyone who saw the request can send these, so no rule counts them'));
  await showAccount();
  await send('a genuine request now', await genuine('demo-fraud-after'));

  print(dim(`   the customer reports a second phone stolen: the operator revokes it (${stolenPhone.deviceId.slice(0, 10)}…)`));
  const revoked = await admin('POST', '/admin/devices/revoke', adminToken, { deviceId: stolenPhone.deviceId, reason: 'phone reported stolen' });
  print(`   POST /admin/devices/revoke with the dev token   ← ${revoked.status === 200 ? green('200') : red(String(revoked.status))} ${dim(`revoked=${String(revoked.body['revoked'])} revokedAt=${String(revoked.body['revokedAt'])}`)}`);
  const device = await admin('GET', `/admin/devices?id=${stolenPhone.deviceId}`, adminToken);
  print(`   GET /admin/devices?id=…                         ← ${device.status} ${dim(`subject=${String(device.body['subject'])} integrity=${String(device.body['integrity'])} revoked=${String(device.body['revoked'])}`)}`);
  for (let i = 1; i <= 3; i++) await send(`the stolen phone signs a transfer (${i})`, await genuine(`demo-fraud-stolen-${i}`, stolenPhone));
  await settled();
  await showEvents(['device_revoked']);
  print(dim('   trust verified: fresh requests its own key signed; rule revoked-device counts them'));
  await showAccount();
  await send(`${FRAUD_DEMO_SUBJECT}'s own phone now`, await genuine('demo-fraud-disabled'));

  const refused = await admin('POST', '/admin/accounts/enable', undefined, { subject: FRAUD_DEMO_SUBJECT });
  print(`   POST /admin/accounts/enable without the token   ← ${red(String(refused.status))} ${dim(String(refused.body['error']))}`);
  const enabled = await admin('POST', '/admin/accounts/enable', adminToken, { subject: FRAUD_DEMO_SUBJECT, reason: 'customer confirmed by phone' });
  print(`   POST /admin/accounts/enable with the dev token  ← ${enabled.status === 200 ? green('200') : red(String(enabled.status))} ${dim(JSON.stringify(enabled.body))}`);
  await send('a genuine request after re-enabling', await genuine('demo-fraud-enabled'));
  await send('the stolen phone again', await genuine('demo-fraud-stolen-again', stolenPhone));
  print('');
}

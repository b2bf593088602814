// The envelope end to end: round trips, and every refusal answering the right code.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { E2EE_FAILURES, type E2eeFailureCode } from './codes.js';
import {
  checkRequestEnvelope,
  decryptRequest,
  deviceKeyFromRaw,
  E2EE_REQUEST_MEDIA_TYPE,
  E2EE_RESPONSE_MEDIA_TYPE,
  encodeBinding,
  encryptRequest,
  gatehouseRequestInfo,
  openCheckedEnvelope,
  readDeviceKeyId,
  type DecryptedRequest,
  type EncryptedRequest,
  type RequestBinding,
} from './envelope.js';
import { fixtureDevice, fixtureKeyring } from './fixtures.js';
import { AEAD_AES_128_GCM, AEAD_CHACHA20_POLY1305, setupSender, suiteFor } from './hpke.js';
import { chooseKeyConfig, decodeKeyConfigList, type KeyConfig } from './keys.js';

const keyring = fixtureKeyring();
const device = fixtureDevice('dev-01HZX3');
const otherDevice = fixtureDevice('dev-other');
const configs = (() => {
  const decoded = decodeKeyConfigList(keyring.encodedKeyConfigs());
  assert.ok(decoded.ok);
  return decoded.configs;
})();
const deviceKeys = new Map([
  [device.deviceKeyId, device.key],
  [otherDevice.deviceKeyId, otherDevice.key],
]);
const deps = { keyring, deviceKey: (id: string) => deviceKeys.get(id) };
const binding: RequestBinding = { method: 'POST', path: '/v1/transfers?idempotency=abc', audience: 'api.superapp.example' };

function seal(options: { aeadId?: number; config?: KeyConfig; body?: Uint8Array; contentType?: string | null; bind?: RequestBinding; deviceKeyId?: string } = {}): EncryptedRequest {
  const chosen = chooseKeyConfig(options.config === undefined ? configs : [options.config], [options.aeadId ?? AEAD_AES_128_GCM]);
  assert.ok(chosen.ok);
  const sealed = encryptRequest({
    ...(options.bind ?? binding),
    keyConfig: chosen.config,
    suite: chosen.suite,
    deviceKeyId: options.deviceKeyId ?? device.deviceKeyId,
    devicePrivateKey: device.pair.privateKey,
    body: options.body ?? Buffer.from('{"amount":"12.34","to":"acct-9"}'),
    contentType: options.contentType === undefined ? 'application/json' : options.contentType,
  });
  assert.ok(sealed.ok, sealed.ok ? '' : sealed.detail);
  return sealed;
}

function open(body: Uint8Array, bind: RequestBinding = binding, contentType: string | undefined = E2EE_REQUEST_MEDIA_TYPE) {
  return decryptRequest({ ...bind, body, contentType }, deps);
}

const codeOf = (result: { ok: boolean; code?: string }): string => (result.ok ? 'ok' : (result.code ?? '?'));

// Generators for request-line values within the documented bounds.
const visibleAscii = (min: number, max: number) =>
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: min, maxLength: max });
const bindingArb = fc.record({ method: visibleAscii(1, 10), path: visibleAscii(1, 200).map((p) => '/' + p), audience: visibleAscii(1, 40) });
const contentTypeArb = fc.option(fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 }), { nil: null });

describe('round trips', () => {
  test('random requests and responses round-trip for both AEADs, both key ids and any binding', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 4096 }),
        contentTypeArb,
        bindingArb,
        fc.constantFrom(AEAD_AES_128_GCM, AEAD_CHACHA20_POLY1305),
        fc.constantFrom(...configs),
        fc.uint8Array({ maxLength: 4096 }),
        contentTypeArb,
        (body, contentType, bind, aeadId, config, responseBody, responseType) => {
          const sealed = seal({ aeadId, config, body, contentType, bind });
          const opened = open(sealed.body, bind);
          assert.ok(opened.ok, opened.ok ? '' : opened.detail);
          assert.deepEqual([...opened.plaintext], [...body]);
          assert.equal(opened.contentType, contentType === '' ? null : contentType);
          assert.equal(opened.deviceKeyId, device.deviceKeyId);
          assert.equal(opened.keyId, config.keyId);
          assert.equal(opened.aeadId, aeadId);
          const response = opened.response.encrypt(responseBody, responseType);
          assert.ok(response.ok);
          assert.equal(response.contentType, E2EE_RESPONSE_MEDIA_TYPE);
          const back = sealed.response.decrypt(response.body, response.contentType);
          assert.ok(back.ok, back.ok ? '' : back.detail);
          assert.deepEqual([...back.plaintext], [...responseBody]);
          assert.equal(back.contentType, responseType === '' ? null : responseType);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('readDeviceKeyId reads the id before any key is needed; content-type parameters and case are ignored', () => {
    const sealed = seal();
    assert.deepEqual(readDeviceKeyId(sealed.body), { ok: true, deviceKeyId: device.deviceKeyId });
    assert.ok(open(sealed.body, binding, 'Application/Vnd.Gatehouse.E2EE-Request; charset=binary').ok);
  });

  test('in two steps, as the filter runs it: the checks name the device with no key, then the enrolled key opens it', () => {
    const sealed = seal();
    const checked = checkRequestEnvelope({ ...binding, body: sealed.body, contentType: E2EE_REQUEST_MEDIA_TYPE }, { keyring });
    assert.ok(checked.ok);
    assert.equal(checked.deviceKeyId, device.deviceKeyId);
    const codeOf = (result: { ok: true } | { ok: false; code: string }): string | undefined => (result.ok ? undefined : result.code);
    assert.equal(codeOf(openCheckedEnvelope(checked, undefined)), 'e2ee_unknown_device');
    assert.equal(codeOf(openCheckedEnvelope(checked, otherDevice.key)), 'e2ee_decrypt_failed');
    const opened = openCheckedEnvelope(checked, device.key);
    assert.ok(opened.ok);
    assert.equal(opened.deviceKeyId, device.deviceKeyId);
    // a refusal that needs no key comes from the first step, whatever the device
    const wrongPath = checkRequestEnvelope({ ...binding, path: '', body: sealed.body, contentType: E2EE_REQUEST_MEDIA_TYPE }, { keyring });
    assert.equal(codeOf(wrongPath), 'e2ee_binding_invalid');
  });

  test('two seals of the same body differ (fresh enc) and give distinct replay keys', () => {
    const a = open(seal().body) as DecryptedRequest;
    const b = open(seal().body) as DecryptedRequest;
    assert.ok(a.ok && b.ok);
    assert.notEqual(a.replayKey, b.replayKey);
  });
});

describe('refusals', () => {
  test('every single-byte change of the envelope is refused with the code for the field it hits', () => {
    const sealed = seal({ body: Buffer.from('pay 100 to acct-9') });
    const deviceIdEnd = 8 + device.deviceKeyId.length;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: sealed.body.length - 1 }), fc.integer({ min: 1, max: 255 }), (index, xor) => {
        const tampered = Buffer.from(sealed.body);
        tampered[index]! ^= xor;
        const result = open(tampered);
        const newByte = tampered[index]!;
        let expected: E2eeFailureCode[];
        if (index === 0) expected = keyring.find(newByte) === undefined ? ['e2ee_unknown_key_id'] : ['e2ee_decrypt_failed'];
        else if (index <= 4) expected = ['e2ee_suite_unsupported'];
        else if (index <= 6) expected = tampered.readUInt16BE(5) === AEAD_CHACHA20_POLY1305 ? ['e2ee_decrypt_failed'] : ['e2ee_suite_unsupported'];
        else if (index === 7) expected = ['e2ee_envelope_malformed', 'e2ee_unknown_device'];
        else if (index < deviceIdEnd) expected = newByte < 0x21 || newByte > 0x7e ? ['e2ee_envelope_malformed'] : ['e2ee_unknown_device'];
        else expected = ['e2ee_decrypt_failed']; // enc and ciphertext
        assert.ok(expected.includes(codeOf(result) as E2eeFailureCode), `byte ${index} ^ ${xor}: got ${codeOf(result)}, expected ${expected.join('|')}`);
      }),
      { numRuns: 600 },
    );
  });

  test('every truncation is refused: malformed inside the header, enc or tag, decrypt_failed after', () => {
    const sealed = seal({ body: Buffer.alloc(40, 1) });
    const minimum = 8 + device.deviceKeyId.length + 32 + 17;
    for (let length = 0; length < sealed.body.length; length++) {
      const result = open(sealed.body.subarray(0, length));
      assert.equal(codeOf(result), length < minimum ? 'e2ee_envelope_malformed' : 'e2ee_decrypt_failed', `length ${length}`);
    }
  });

  test('a body replayed against another method, path or audience is refused with e2ee_decrypt_failed', () => {
    fc.assert(
      fc.property(bindingArb, fc.constantFrom('method', 'path', 'audience'), bindingArb, (bind, field, other) => {
        fc.pre(bind[field] !== other[field]);
        const sealed = seal({ bind });
        assert.equal(codeOf(open(sealed.body, { ...bind, [field]: other[field] })), 'e2ee_decrypt_failed');
      }),
      { numRuns: 60 },
    );
  });

  test('a small-order enc (all zeros, or the order-8 point) is refused with e2ee_decrypt_failed, not an exception', () => {
    const sealed = seal();
    const encAt = 8 + device.deviceKeyId.length;
    for (const point of ['00'.repeat(32), '01' + '00'.repeat(31), 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800']) {
      const tampered = Buffer.from(sealed.body);
      Buffer.from(point, 'hex').copy(tampered, encAt);
      const result = open(tampered);
      assert.equal(codeOf(result), 'e2ee_decrypt_failed', point);
    }
  });

  test('a device claiming another device key id fails authentication (e2ee_decrypt_failed)', () => {
    // signed with device's key but labelled as otherDevice, whose enrolled key differs
    const sealed = seal({ deviceKeyId: otherDevice.deviceKeyId });
    assert.equal(codeOf(open(sealed.body)), 'e2ee_decrypt_failed');
  });

  test('the static-static DH kept per (gateway key, device key) never answers for another pair', () => {
    // Warm every pair first, then decrypt every (sender, claimed device, gateway key) combination:
    // only the true sender under its own id opens, whichever pair was computed before.
    const senders = [device, otherDevice];
    const sealFrom = (sender: typeof device, claimedId: string, config: KeyConfig): Uint8Array => {
      const chosen = chooseKeyConfig([config], [AEAD_AES_128_GCM]);
      assert.ok(chosen.ok);
      const sealed = encryptRequest({
        ...binding, keyConfig: chosen.config, suite: chosen.suite, deviceKeyId: claimedId,
        devicePrivateKey: sender.pair.privateKey, body: Buffer.from(`from ${sender.deviceKeyId}`), contentType: 'text/plain',
      });
      assert.ok(sealed.ok);
      return sealed.body;
    };
    for (let round = 0; round < 2; round++) {
      for (const config of configs) {
        for (const sender of senders) {
          for (const claimed of senders) {
            const result = open(sealFrom(sender, claimed.deviceKeyId, config));
            const expected = sender === claimed ? 'ok' : 'e2ee_decrypt_failed';
            assert.equal(codeOf(result), expected, `round ${round}, key ${config.keyId}, ${sender.deviceKeyId} as ${claimed.deviceKeyId}`);
            if (result.ok) assert.equal(result.plaintext.toString(), `from ${sender.deviceKeyId}`);
          }
        }
      }
    }
  });

  test('an enrolled small-order device key is refused on every request, never kept as a shared secret', () => {
    const weak = deviceKeyFromRaw(Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex'));
    const weakDeps = { keyring, deviceKey: (id: string) => (id === device.deviceKeyId ? weak : undefined) };
    const sealed = seal();
    for (let attempt = 0; attempt < 2; attempt++) {
      const result = decryptRequest({ ...binding, body: sealed.body, contentType: E2EE_REQUEST_MEDIA_TYPE }, weakDeps);
      assert.equal(codeOf(result), 'e2ee_decrypt_failed', `attempt ${attempt}`);
    }
  });

  test('an envelope that opens but whose inner framing is wrong answers e2ee_inner_malformed', () => {
    // Sealed by hand (a faulty app): the AEAD opens, then the content-type framing is refused.
    const gatewayKey = keyring.find(7);
    assert.ok(gatewayKey !== undefined);
    const id = Buffer.from(device.deviceKeyId, 'latin1');
    const header = Buffer.concat([Uint8Array.of(7, 0x00, 0x20, 0x00, 0x01, 0x00, AEAD_AES_128_GCM, id.length), id]);
    const encodedBinding = encodeBinding(binding);
    assert.ok(typeof encodedBinding !== 'string', encodedBinding as string);
    const info = gatehouseRequestInfo(header, encodedBinding);
    const suite = suiteFor(AEAD_AES_128_GCM);
    assert.ok(suite !== undefined);
    const framings = {
      'a content-type length past the end': Uint8Array.of(200, 0x61, 0x62),
      'a content type with a control byte': Buffer.concat([Uint8Array.of(4), Buffer.from('a\nbc', 'latin1'), Buffer.from('{}')]),
    };
    for (const [name, plaintext] of Object.entries(framings)) {
      const sender = setupSender({ suite, recipientPublicKey: gatewayKey.publicKey, info, senderPrivateKey: device.pair.privateKey });
      const body = Buffer.concat([header, sender.enc, sender.context.seal(Buffer.alloc(0), plaintext)]);
      const result = open(body);
      assert.equal(codeOf(result), 'e2ee_inner_malformed', name);
    }
    // No plaintext byte at all: the ciphertext is a bare tag, shorter than any envelope can be.
    const bare = setupSender({ suite, recipientPublicKey: gatewayKey.publicKey, info, senderPrivateKey: device.pair.privateKey });
    assert.equal(codeOf(open(Buffer.concat([header, bare.enc, bare.context.seal(Buffer.alloc(0), Buffer.alloc(0))]))), 'e2ee_envelope_malformed');
  });

  test('unknown device, wrong content type, oversize body and bad binding each have their code', () => {
    const sealed = seal({ deviceKeyId: 'dev-never-enrolled' });
    assert.equal(codeOf(open(sealed.body)), 'e2ee_unknown_device');
    assert.equal(codeOf(open(seal().body, binding, 'application/json')), 'e2ee_content_type_invalid');
    assert.equal(codeOf(decryptRequest({ ...binding, body: seal().body, contentType: undefined }, deps)), 'e2ee_content_type_invalid');
    const big = decryptRequest({ ...binding, body: Buffer.alloc(2048), contentType: E2EE_REQUEST_MEDIA_TYPE }, { ...deps, limits: { maxRequestBytes: 1024, maxResponseBytes: 1024 } });
    assert.equal(codeOf(big), 'e2ee_too_large');
    assert.equal(codeOf(open(seal().body, { ...binding, path: '' })), 'e2ee_binding_invalid');
    assert.equal(codeOf(open(seal().body, { ...binding, path: '/é' })), 'e2ee_binding_invalid');
    assert.equal(codeOf(open(seal().body, { ...binding, audience: 'x'.repeat(256) })), 'e2ee_binding_invalid');
  });

  test('a response too large or with an uncarriable content type is refused at the gateway', () => {
    const opened = decryptRequest({ ...binding, body: seal().body, contentType: E2EE_REQUEST_MEDIA_TYPE }, { ...deps, limits: { maxRequestBytes: 4096, maxResponseBytes: 100 } });
    assert.ok(opened.ok);
    assert.equal(codeOf(opened.response.encrypt(Buffer.alloc(101), null)), 'e2ee_upstream_too_large');
    assert.equal(codeOf(opened.response.encrypt(Buffer.alloc(10), 'text/plain; x=é')), 'e2ee_upstream_content_type_invalid');
    assert.ok(opened.response.encrypt(Buffer.alloc(100), null).ok);
  });

  test('arbitrary bytes, content types and request lines never throw and never reach e2ee_internal_error', () => {
    const known = new Set(Object.keys(E2EE_FAILURES));
    const sealed = seal();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          // mostly-valid envelopes with random tails and headers, to get past the early checks
          fc.tuple(fc.constantFrom(6, 7, 9), fc.uint8Array({ minLength: 0, maxLength: 120 })).map(([keyId, rest]) => Buffer.concat([sealed.body.subarray(0, 1).map(() => keyId), sealed.body.subarray(1, 20), rest])),
          fc.integer({ min: 0, max: sealed.body.length }).map((cut) => Buffer.concat([sealed.body.subarray(0, cut), Buffer.from('junk')])),
        ),
        fc.oneof(fc.constant(E2EE_REQUEST_MEDIA_TYPE), fc.string(), fc.constant(undefined)),
        fc.record({ method: fc.string({ maxLength: 40 }), path: fc.string({ maxLength: 300 }), audience: fc.string({ maxLength: 300 }) }),
        (body, contentType, bind) => {
          const result = decryptRequest({ ...bind, body, contentType }, deps);
          if (!result.ok) {
            assert.ok(known.has(result.code));
            assert.notEqual(result.code, 'e2ee_internal_error', result.detail);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });
});

describe('responses', () => {
  const sealed = seal();
  const opened = open(sealed.body);
  assert.ok(opened.ok);
  const response = opened.response.encrypt(Buffer.from('{"status":"accepted"}'), 'application/json');
  assert.ok(response.ok);

  test('every single-byte change of the response (nonce, ciphertext or tag) is refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: response.body.length - 1 }), fc.integer({ min: 1, max: 255 }), (index, xor) => {
        const tampered = Buffer.from(response.body);
        tampered[index]! ^= xor;
        assert.equal(codeOf(sealed.response.decrypt(tampered, E2EE_RESPONSE_MEDIA_TYPE)), 'e2ee_response_decrypt_failed');
      }),
      { numRuns: 300 },
    );
  });

  test('truncated responses, wrong content types and another request’s response are refused', () => {
    const minimum = 16 + 16 + 1;
    for (let length = 0; length < response.body.length; length++) {
      const code = codeOf(sealed.response.decrypt(response.body.subarray(0, length), E2EE_RESPONSE_MEDIA_TYPE));
      assert.equal(code, length < minimum ? 'e2ee_response_malformed' : 'e2ee_response_decrypt_failed', `length ${length}`);
    }
    assert.equal(codeOf(sealed.response.decrypt(response.body, 'application/json')), 'e2ee_response_content_type_invalid');
    const another = seal();
    assert.equal(codeOf(another.response.decrypt(response.body, E2EE_RESPONSE_MEDIA_TYPE)), 'e2ee_response_decrypt_failed');
  });

  test('a ChaCha20-Poly1305 request gets a 32-byte response nonce (max(Nn, Nk))', () => {
    const chacha = seal({ aeadId: AEAD_CHACHA20_POLY1305 });
    const result = open(chacha.body);
    assert.ok(result.ok);
    const encrypted = result.response.encrypt(Buffer.from('ok'), null);
    assert.ok(encrypted.ok);
    assert.equal(encrypted.body.length, 32 + 1 + 2 + suiteFor(AEAD_CHACHA20_POLY1305)!.aead.Nt);
  });
});

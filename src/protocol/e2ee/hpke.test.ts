// RFC 9180 Appendix A known-answer tests, every intermediate value, byte for byte.
import assert from 'node:assert/strict';
import { createHmac, hkdfSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { fromHex, toHex } from './bytes.js';
import {
  deriveX25519KeyPair,
  hkdfExpand,
  hkdfExpandLatin1,
  hkdfExtract,
  hkdfExtractLatin1,
  hmacSha256,
  HpkeError,
  setupRecipient,
  setupSender,
  suiteFor,
  x25519PrivateKeyFromRaw,
  x25519PublicKeyFromRaw,
  x25519RawPrivateKey,
  type HpkeContext,
} from './hpke.js';
import { parseRfc9180Appendix, vectorFile, type VectorRecord } from './vectors/parse-rfc-text.js';

const appendix = parseRfc9180Appendix(vectorFile('rfc9180-appendix-a.txt'));

const field = (record: VectorRecord | undefined, name: string): string => {
  const value = record?.[name];
  if (value === undefined) throw new Error(`vector field ${name} missing`);
  return value;
};

function checkContext(label: string, context: HpkeContext, encryptions: VectorRecord[], exports: VectorRecord[]): void {
  assert.ok(encryptions.length >= 6, `${label}: the RFC lists six sequence numbers`);
  for (const vector of encryptions) {
    const sequence = Number(field(vector, 'sequence number'));
    assert.equal(toHex(context.nonceFor(sequence)), field(vector, 'nonce'), `${label} nonce #${sequence}`);
    const sealed = context.sealAt(sequence, fromHex(field(vector, 'aad')), fromHex(field(vector, 'pt')));
    assert.equal(toHex(sealed), field(vector, 'ct'), `${label} ct #${sequence}`);
    const opened = context.openAt(sequence, fromHex(field(vector, 'aad')), fromHex(field(vector, 'ct')));
    assert.equal(opened === undefined ? 'refused' : toHex(opened), field(vector, 'pt'), `${label} open #${sequence}`);
  }
  assert.equal(exports.length, 3);
  for (const vector of exports) {
    const exported = context.export(fromHex(field(vector, 'exporter_context')), Number(field(vector, 'L')));
    assert.equal(toHex(exported), field(vector, 'exported_value'), `${label} export ${field(vector, 'exporter_context')}`);
  }
}

for (const [id, mode] of [['A.1.1', 'base'], ['A.1.3', 'auth'], ['A.2.1', 'base']] as const) {
  describe(`RFC 9180 ${id} (${mode} mode)`, () => {
    const setup = appendix.get(id)?.records[0];
    const encryptions = appendix.get(`${id}.1`)?.records ?? [];
    const exports = appendix.get(`${id}.2`)?.records ?? [];
    const suite = suiteFor(Number(field(setup, 'aead_id')));
    assert.ok(suite !== undefined);
    const info = fromHex(field(setup, 'info'));

    test('DeriveKeyPair reproduces skEm/pkEm and skRm/pkRm (and skSm/pkSm) from the ikm values', () => {
      for (const role of mode === 'auth' ? ['E', 'R', 'S'] : ['E', 'R']) {
        const pair = deriveX25519KeyPair(fromHex(field(setup, `ikm${role}`)));
        assert.equal(toHex(x25519RawPrivateKey(pair.privateKey)), field(setup, `sk${role}m`));
        assert.equal(toHex(pair.publicKey), field(setup, `pk${role}m`));
      }
    });

    test('the sender reproduces enc, shared_secret, key schedule, ciphertexts and exports', () => {
      const sender = setupSender({
        suite,
        recipientPublicKey: fromHex(field(setup, 'pkRm')),
        info,
        ephemeralPrivateKey: x25519PrivateKeyFromRaw(fromHex(field(setup, 'skEm'))),
        ...(mode === 'auth' ? { senderPrivateKey: x25519PrivateKeyFromRaw(fromHex(field(setup, 'skSm'))) } : {}),
      });
      assert.equal(toHex(sender.enc), field(setup, 'enc'));
      assert.equal(toHex(sender.sharedSecret), field(setup, 'shared_secret'));
      const schedule = sender.context.schedule;
      assert.equal(toHex(schedule.keyScheduleContext), field(setup, 'key_schedule_context'));
      assert.equal(toHex(schedule.secret), field(setup, 'secret'));
      assert.equal(toHex(schedule.key), field(setup, 'key'));
      assert.equal(toHex(schedule.baseNonce), field(setup, 'base_nonce'));
      assert.equal(toHex(schedule.exporterSecret), field(setup, 'exporter_secret'));
      checkContext('sender', sender.context, encryptions, exports);
    });

    test('the recipient reproduces shared_secret, key schedule, plaintexts and exports', () => {
      const recipient = setupRecipient({
        suite,
        recipientPrivateKey: x25519PrivateKeyFromRaw(fromHex(field(setup, 'skRm'))),
        recipientPublicKey: fromHex(field(setup, 'pkRm')),
        enc: fromHex(field(setup, 'enc')),
        info,
        ...(mode === 'auth'
          ? { sender: { publicKey: fromHex(field(setup, 'pkSm')), keyObject: x25519PublicKeyFromRaw(fromHex(field(setup, 'pkSm'))) } }
          : {}),
      });
      assert.equal(toHex(recipient.sharedSecret), field(setup, 'shared_secret'));
      assert.equal(toHex(recipient.context.schedule.key), field(setup, 'key'));
      assert.equal(toHex(recipient.context.schedule.baseNonce), field(setup, 'base_nonce'));
      assert.equal(toHex(recipient.context.schedule.exporterSecret), field(setup, 'exporter_secret'));
      checkContext('recipient', recipient.context, encryptions, exports);
    });

    test('the sequential seal/open API walks sequence numbers 0, 1, 2 like the RFC lists', () => {
      const sender = setupSender({
        suite,
        recipientPublicKey: fromHex(field(setup, 'pkRm')),
        info,
        ephemeralPrivateKey: x25519PrivateKeyFromRaw(fromHex(field(setup, 'skEm'))),
        ...(mode === 'auth' ? { senderPrivateKey: x25519PrivateKeyFromRaw(fromHex(field(setup, 'skSm'))) } : {}),
      });
      for (const vector of encryptions.slice(0, 3)) {
        assert.equal(toHex(sender.context.seal(fromHex(field(vector, 'aad')), fromHex(field(vector, 'pt')))), field(vector, 'ct'));
      }
    });
  });
}

describe('RFC 9180 §7.1.4 input validation', () => {
  test('a small-order enc (all-zero X25519 output) is refused with dh_failed, not a wrong key', () => {
    const suite = suiteFor(1)!;
    const recipient = deriveX25519KeyPair(Buffer.alloc(32, 7));
    assert.throws(
      () =>
        setupRecipient({ suite, recipientPrivateKey: recipient.privateKey, recipientPublicKey: recipient.publicKey, enc: Buffer.alloc(32), info: Buffer.alloc(0) }),
      (error: unknown) => error instanceof HpkeError && error.reason === 'dh_failed',
    );
  });

  test('a tampered ciphertext does not open', () => {
    const setup = appendix.get('A.1.1')?.records[0];
    const vector = appendix.get('A.1.1.1')?.records[0];
    const recipient = setupRecipient({
      suite: suiteFor(1)!,
      recipientPrivateKey: x25519PrivateKeyFromRaw(fromHex(field(setup, 'skRm'))),
      recipientPublicKey: fromHex(field(setup, 'pkRm')),
      enc: fromHex(field(setup, 'enc')),
      info: fromHex(field(setup, 'info')),
    });
    const ct = fromHex(field(vector, 'ct'));
    ct[0]! ^= 1;
    assert.equal(recipient.context.openAt(0, fromHex(field(vector, 'aad')), ct), undefined);
  });
});

describe('HMAC-SHA256 and HKDF-SHA256 (two one-shot hashes, createHmac fallback)', () => {
  test('RFC 4231 test case 2', () => {
    assert.equal(
      toHex(hmacSha256(Buffer.from('Jefe'), Buffer.from('what do ya want '), Buffer.from('for nothing?'))),
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  test('equals createHmac for every key length 0..130 and message sizes around the scratch limit', () => {
    // up and then down: a key shorter than the one before must not inherit its bytes in the pads
    const lengths = Array.from({ length: 131 }, (_, index) => index);
    for (const keyLength of [...lengths, ...lengths.reverse()]) {
      const key = Buffer.alloc(keyLength, keyLength * 7 + 1);
      for (const parts of [[], [0], [1, 0, 31], [55], [56, 64], [1023], [1024], [1025], [600, 600]]) {
        const message = parts.map((length, index) => Buffer.alloc(length, 0x41 + index + length));
        const expected = createHmac('sha256', key);
        for (const part of message) expected.update(part);
        assert.equal(toHex(hmacSha256(key, ...message)), toHex(expected.digest()), `key ${keyLength}, parts ${parts.join('+')}`);
      }
    }
  });

  test('latin1 keys and messages (the per-request form) equal createHmac, in any order of key kinds', () => {
    // Strings take the word-wise pad path and are remembered in the pads; Buffers are not. Walk a
    // sequence that repeats a string, changes a string of the same length, switches kinds and
    // lengths (multiples of four and not), so a stale pad shows as a wrong digest.
    const sequence: { key: Buffer; asString: boolean }[] = [];
    for (const keyLength of [32, 32, 31, 48, 0, 32, 64, 65, 4, 3, 32]) {
      for (const asString of [true, true, false, true]) sequence.push({ key: Buffer.alloc(keyLength, (sequence.length * 13 + keyLength) & 0xff), asString });
    }
    for (const [index, { key, asString }] of sequence.entries()) {
      const message = Buffer.alloc(20 + index, index);
      const expected = toHex(createHmac('sha256', key).update(message).update(message).digest());
      const salt = asString ? key.toString('latin1') : key;
      const text = message.toString('latin1');
      assert.equal(toHex(Buffer.from(hkdfExtractLatin1(salt, text + text), 'latin1')), expected, `step ${index}: key ${key.length}, ${asString ? 'string' : 'Buffer'}`);
      // Expand with L ≤ 32 is the first L bytes of HMAC(prk, info ‖ 0x01)
      const block = createHmac('sha256', key).update(message).update(Uint8Array.of(1)).digest().subarray(0, 16);
      assert.equal(toHex(Buffer.from(hkdfExpandLatin1(salt, text, 16), 'latin1')), toHex(block), `step ${index}: expand`);
    }
  });

  test('HKDF equals node hkdfSync, one block and several', () => {
    const salt = Buffer.from('000102030405060708090a0b0c', 'hex');
    const ikm = Buffer.alloc(22, 0x0b);
    const info = Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex');
    for (const length of [1, 16, 32, 33, 42, 64, 100]) {
      assert.equal(toHex(hkdfExpand(hkdfExtract(salt, ikm), info, length)), toHex(Buffer.from(hkdfSync('sha256', ikm, salt, info, length))), `L = ${length}`);
    }
  });
});

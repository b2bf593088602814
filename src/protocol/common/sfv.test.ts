import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { base64Decode, base64Encode, base64urlDecode, base64urlEncode } from './base64.js';
import { parseDictionary, serializeDictionary } from './sfv.js';

test('dictionaries from RFC 8941 §3.2 and RFC 9421 parse and serialise back to their canonical form', () => {
  const cases: [string, string][] = [
    ['en="Applepie", da=:w4ZibGV0w6ZydGU=:', 'en="Applepie", da=:w4ZibGV0w6ZydGU=:'],
    ['a=?0, b, c; foo=bar', 'a=?0, b, c;foo=bar'],
    ['rating=1.5, feelings=(joy sadness)', 'rating=1.5, feelings=(joy sadness)'],
    ['a=(1 2), b=3, c=4;aa=bb, d=(5 6);valid', 'a=(1 2), b=3, c=4;aa=bb, d=(5 6);valid'],
    ['sig1=("@method" "@authority");created=1618884473;keyid="k";alg="ed25519"', 'sig1=("@method" "@authority");created=1618884473;keyid="k";alg="ed25519"'],
    ['  x="a\\"b\\\\c"  ,\ty=-12', 'x="a\\"b\\\\c", y=-12'],
    ['s=( "a"   "b" )', 's=("a" "b")'],
  ];
  for (const [input, canonical] of cases) {
    const dict = parseDictionary(input);
    assert.ok(dict, input);
    assert.equal(serializeDictionary(dict), canonical, input);
  }
});

test('a repeated dictionary key or parameter keeps its first position and its last value', () => {
  const dict = parseDictionary('a=1;x=1;y=2;x=3, b=2, a=4');
  assert.ok(dict);
  assert.equal(serializeDictionary(dict), 'a=4, b=2');
  const params = parseDictionary('a=1;x=1;y=2;x=3');
  assert.ok(params);
  assert.equal(serializeDictionary(params), 'a=1;x=3;y=2');
});

test('invalid dictionaries are refused rather than guessed at', () => {
  for (const bad of ['a=', 'A=1', 'a=1,', 'a=1,,b=2', 'a=(1 2', 'a="unterminated', 'a=:not base64!:', 'a=:YQ:', 'a="\\x"', 'a=1234567890123456', 'a=1.2345', 'a=?2', 'a=1 b=2', 'a="é"', 'a=(1)(2)']) {
    assert.equal(parseDictionary(bad), undefined, bad);
  }
});

test('base64 and base64url round-trip any bytes and refuse non-canonical or foreign text', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
      assert.deepEqual(base64Decode(base64Encode(bytes)), bytes);
      assert.deepEqual(base64urlDecode(base64urlEncode(bytes)), bytes);
      assert.equal(base64Encode(bytes), Buffer.from(bytes).toString('base64'));
      assert.equal(base64urlEncode(bytes), Buffer.from(bytes).toString('base64url'));
    }),
  );
  for (const bad of ['YQ', 'YR==', 'Y===', 'a-b_', '====']) assert.equal(base64Decode(bad), undefined, bad);
  for (const bad of ['YQ==', 'YR', 'a', 'a+b/']) assert.equal(base64urlDecode(bad), undefined, bad);
});

test('no string makes the dictionary parser throw, and whatever parses re-parses to the same serialisation', () => {
  const sfAlphabet = fc.constantFrom(...Array.from('abz*-_.;=,() "\\:?01239+/=\tAZé@'));
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: sfAlphabet })), (text) => {
      const dict = parseDictionary(text);
      if (dict !== undefined) {
        const once = serializeDictionary(dict);
        const again = parseDictionary(once);
        assert.ok(again);
        assert.equal(serializeDictionary(again), once);
      }
    }),
    { numRuns: 3000 },
  );
});

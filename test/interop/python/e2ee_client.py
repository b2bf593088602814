#!/usr/bin/python3
"""An independent gatehouse e2ee client, written from docs/protocol/e2ee.md and RFC 9180 alone.

Runs under Debian's /usr/bin/python3 with python3-cryptography (X25519, HMAC-SHA256, AES-GCM,
ChaCha20-Poly1305); HPKE itself is implemented here from RFC 9180, not from gatehouse's code.

Protocol with the test (one JSON object per line on stdin, one answer per line on stdout):
  {"op": "encrypt", ...request fields...}       -> {"request": hex, "content_type": str}
  {"op": "decrypt", "body": hex, "content_type"} -> {"ok": true, "body": hex, "content_type": str|null}
                                                    or {"ok": false, "error": str}
  {"op": "example", ...}                          -> the doc's worked example request, from seeds
The context of the last "encrypt" is kept for the following "decrypt", as an app keeps it.
"""
import hashlib
import hmac
import json
import os
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization
from cryptography.exceptions import InvalidTag

REQUEST_MEDIA_TYPE = "application/vnd.gatehouse.e2ee-request"
RESPONSE_MEDIA_TYPE = "application/vnd.gatehouse.e2ee-response"
KEM_X25519 = 0x0020
KDF_HKDF_SHA256 = 0x0001
MODE_AUTH = 0x02
# aead_id -> (Nk, Nn, constructor)
AEADS = {0x0001: (16, 12, AESGCM), 0x0003: (32, 12, ChaCha20Poly1305)}


def i2osp(n, w):
    return n.to_bytes(w, "big")


# --- HKDF-SHA256 (RFC 5869) and RFC 9180 labelled forms -------------------------------------
def extract(salt, ikm):
    return hmac.new(salt if salt else b"\x00" * 32, ikm, hashlib.sha256).digest()


def expand(prk, info, length):
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def labeled_extract(suite_id, salt, label, ikm):
    return extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def labeled_expand(suite_id, prk, label, info, length):
    return expand(prk, i2osp(length, 2) + b"HPKE-v1" + suite_id + label + info, length)


KEM_SUITE_ID = b"KEM" + i2osp(KEM_X25519, 2)


def raw_public(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def derive_key_pair(ikm):
    """RFC 9180 §7.1.3 DeriveKeyPair for X25519."""
    dkp_prk = labeled_extract(KEM_SUITE_ID, b"", b"dkp_prk", ikm)
    sk = labeled_expand(KEM_SUITE_ID, dkp_prk, b"sk", b"", 32)
    return X25519PrivateKey.from_private_bytes(sk)


def auth_encap(pk_r_raw, sk_s, sk_e=None):
    """RFC 9180 §4.1 AuthEncap."""
    sk_e = sk_e or X25519PrivateKey.generate()
    pk_r = X25519PublicKey.from_public_bytes(pk_r_raw)
    dh = sk_e.exchange(pk_r) + sk_s.exchange(pk_r)
    enc = raw_public(sk_e)
    kem_context = enc + pk_r_raw + raw_public(sk_s)
    eae_prk = labeled_extract(KEM_SUITE_ID, b"", b"eae_prk", dh)
    return labeled_expand(KEM_SUITE_ID, eae_prk, b"shared_secret", kem_context, 32), enc


class SenderContext:
    """RFC 9180 §5.1 key schedule, mode_auth (no PSK), used for one Seal and the response export."""

    def __init__(self, aead_id, shared_secret, info):
        self.nk, self.nn, self.aead = AEADS[aead_id]
        self.suite_id = b"HPKE" + i2osp(KEM_X25519, 2) + i2osp(KDF_HKDF_SHA256, 2) + i2osp(aead_id, 2)
        psk_id_hash = labeled_extract(self.suite_id, b"", b"psk_id_hash", b"")
        info_hash = labeled_extract(self.suite_id, b"", b"info_hash", info)
        context = bytes([MODE_AUTH]) + psk_id_hash + info_hash
        secret = labeled_extract(self.suite_id, shared_secret, b"secret", b"")
        self.key = labeled_expand(self.suite_id, secret, b"key", context, self.nk)
        self.base_nonce = labeled_expand(self.suite_id, secret, b"base_nonce", context, self.nn)
        self.exporter_secret = labeled_expand(self.suite_id, secret, b"exp", context, 32)

    def seal_first(self, aad, plaintext):
        return self.aead(self.key).encrypt(self.base_nonce, plaintext, aad)  # sequence number 0

    def export(self, exporter_context, length):
        return labeled_expand(self.suite_id, self.exporter_secret, b"sec", exporter_context, length)


# --- gatehouse e2ee (docs/protocol/e2ee.md §2, §4, §5) --------------------------------------
def parse_key_configs(data):
    """application/ohttp-keys: I2OSP(len, 2) ‖ key_config, repeated; keeps X25519 ones."""
    configs, i = [], 0
    while i < len(data):
        (length,) = struct.unpack(">H", data[i : i + 2])
        config = data[i + 2 : i + 2 + length]
        if len(config) != length:
            raise ValueError("truncated key configuration list")
        i += 2 + length
        key_id, kem_id = config[0], struct.unpack(">H", config[1:3])[0]
        if kem_id != KEM_X25519:
            continue
        public_key = config[3:35]
        (sym_len,) = struct.unpack(">H", config[35:37])
        pairs = [struct.unpack(">HH", config[37 + j : 41 + j]) for j in range(0, sym_len, 4)]
        configs.append({"key_id": key_id, "pk": public_key, "pairs": pairs})
    return configs


def framed(content_type, body):
    ct = (content_type or "").encode("ascii")
    return bytes([len(ct)]) + ct + body


def unframe(plaintext):
    n = plaintext[0]
    if len(plaintext) < 1 + n:
        raise ValueError("framing runs past the end")
    return (plaintext[1 : 1 + n].decode("ascii") or None), plaintext[1 + n :]


def lp16(text):
    data = text.encode("ascii")
    return i2osp(len(data), 2) + data


class Client:
    def __init__(self):
        self.context = None
        self.enc = None

    def encrypt(self, req, sk_e=None):
        configs = parse_key_configs(bytes.fromhex(req["key_configs"]))
        wanted = req.get("aead_id", 0x0001)
        config = next(c for c in configs if (KDF_HKDF_SHA256, wanted) in c["pairs"])
        sk_s = X25519PrivateKey.from_private_bytes(bytes.fromhex(req["device_private_key"]))
        device_key_id = req["device_key_id"].encode("ascii")
        hdr = (
            bytes([config["key_id"]])
            + i2osp(KEM_X25519, 2)
            + i2osp(KDF_HKDF_SHA256, 2)
            + i2osp(wanted, 2)
            + bytes([len(device_key_id)])
            + device_key_id
        )
        binding = lp16(req["method"]) + lp16(req["path"]) + lp16(req["audience"])
        info = REQUEST_MEDIA_TYPE.encode("ascii") + b"\x00" + hdr + binding
        shared_secret, enc = auth_encap(config["pk"], sk_s, sk_e)
        self.context = SenderContext(wanted, shared_secret, info)
        self.enc = enc
        ct = self.context.seal_first(b"", framed(req.get("content_type"), bytes.fromhex(req["body"])))
        return {"request": (hdr + enc + ct).hex(), "content_type": REQUEST_MEDIA_TYPE}

    def decrypt(self, res):
        if (res.get("content_type") or "").split(";")[0].strip().lower() != RESPONSE_MEDIA_TYPE:
            return {"ok": False, "error": "content type"}
        body = bytes.fromhex(res["body"])
        ctx = self.context
        n = max(ctx.nn, ctx.nk)
        if len(body) < n + 16 + 1:
            return {"ok": False, "error": "truncated"}
        response_nonce = body[:n]
        secret = ctx.export(RESPONSE_MEDIA_TYPE.encode("ascii"), n)
        prk = extract(self.enc + response_nonce, secret)
        key, nonce = expand(prk, b"key", ctx.nk), expand(prk, b"nonce", ctx.nn)
        try:
            plaintext = ctx.aead(key).decrypt(nonce, body[n:], b"")
        except InvalidTag:
            return {"ok": False, "error": "aead"}
        content_type, content = unframe(plaintext)
        return {"ok": True, "body": content.hex(), "content_type": content_type}


def seed(label):
    return hashlib.sha256(label.encode("ascii")).digest()


def main():
    client = Client()
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        op = msg["op"]
        if op == "encrypt":
            answer = client.encrypt(msg)
        elif op == "decrypt":
            answer = client.decrypt(msg)
        elif op == "example":
            # The spec's worked example (§8), from its seeds: DeriveKeyPair(SHA-256(label)).
            device = derive_key_pair(seed(msg["device_seed"]))
            ephemeral = derive_key_pair(seed(msg["ephemeral_seed"]))
            msg["device_private_key"] = device.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            ).hex()
            answer = client.encrypt(msg, sk_e=ephemeral)
            answer["device_public_key"] = raw_public(device).hex()
        else:
            answer = {"error": "unknown op " + op}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""An independent app-side implementation of gatehouse request signing, written from
docs/protocol/signing.md alone (python3-cryptography; no gatehouse code).

Usage: signing_client.py <state-dir> <step>   with a JSON object on stdin; prints a JSON object.
Steps:
  device              {"alg": "P-256"|"Ed25519", "e2ee": bool}
                                                          -> {"jwk", "thumbprint", "e2ee_jwk"?}
                                                             (creates the device key, and the X25519 e2ee key if asked)
  enroll              {"challenge", "evidence", "login_token"}
                                                          -> enrollment request body (with the e2ee key if there is one;
                                                             the proof bound to the login token by its ath)
  e2ee-encrypt        {"key_configs", "method", "path", "audience", "content_type", "body"} (hex)
                                                          -> {"request": hex, "content_type"}  (sealed with the enrolled
                                                             e2ee key under the device id, by e2ee_client.py)
  credential-request  {"challenge", "alg"}                -> {"request"}             (creates an ephemeral key)
  sign                {"credential", "now", "requests": [{"method","authority","path","query","body_b64"?}]}
                                                          -> {"headers": [ {...}, ... ]}
  worked-example      {"doc": "<path>"}                   -> {"signature", "expected"}  (re-derives §8.3 of the spec)
"""
import base64
import hashlib
import json
import os
import re
import secrets
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import e2ee_client  # the independent e2ee client beside this file (docs/protocol/e2ee.md)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- keys (spec §1) ----------------------------------------------------------------------------

def public_jwk(key) -> dict:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}


def x25519_jwk(key) -> dict:
    # Spec §1: the e2ee key as an RFC 8037 JWK, x = the raw 32-byte public key, base64url.
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "X25519", "x": b64url(raw)}


def thumbprint(jwk: dict) -> str:
    # RFC 7638: required members in lexicographic order, no whitespace.
    if jwk["kty"] == "EC":
        canonical = '{"crv":"%s","kty":"EC","x":"%s","y":"%s"}' % (jwk["crv"], jwk["x"], jwk["y"])
    else:
        canonical = '{"crv":"%s","kty":"OKP","x":"%s"}' % (jwk["crv"], jwk["x"])
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def sign_raw(key, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))  # DER -> r||s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return key.sign(data)


def jose_alg(key) -> str:
    return "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "EdDSA"


def http_alg(key) -> str:
    return "ecdsa-p256-sha256" if isinstance(key, ec.EllipticCurvePrivateKey) else "ed25519"


def new_key(alg: str):
    return ec.generate_private_key(ec.SECP256R1()) if alg == "P-256" else ed25519.Ed25519PrivateKey.generate()


def save_key(state: str, name: str, key) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with open(os.path.join(state, name + ".pem"), "wb") as f:
        f.write(pem)


def load_key(state: str, name: str):
    with open(os.path.join(state, name + ".pem"), "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def compact_jws(key, typ: str, payload: dict) -> str:
    header = b64url(json.dumps({"alg": jose_alg(key), "typ": typ}, separators=(",", ":")).encode())
    body = b64url(json.dumps(payload, separators=(",", ":")).encode())
    return "%s.%s.%s" % (header, body, b64url(sign_raw(key, ("%s.%s" % (header, body)).encode("ascii"))))


# --- request signing (spec §5) -----------------------------------------------------------------

COMPONENTS = ["@method", "@authority", "@path", "@query", "content-digest", "device-credential"]


def content_digest(body: bytes) -> str:
    return "sha-256=:%s:" % base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def signature_params(created: int, expires: int, nonce: str, keyid: str, alg: str) -> str:
    covered = " ".join('"%s"' % c for c in COMPONENTS)
    return '(%s);created=%d;expires=%d;nonce="%s";keyid="%s";alg="%s";tag="gatehouse-v1"' % (covered, created, expires, nonce, keyid, alg)


def signature_base(method: str, authority: str, path: str, query: str, headers: dict, params: str) -> str:
    values = {
        "@method": method,
        "@authority": authority.lower(),
        "@path": path or "/",
        "@query": "?" + query,
    }
    lines = []
    for name in COMPONENTS:
        value = values[name] if name.startswith("@") else headers[name].strip(" \t")
        lines.append('"%s": %s' % (name, value))
    lines.append('"@signature-params": %s' % params)
    return "\n".join(lines)  # no LF after the last line


def sign_request(key, credential: str, req: dict, now: int, nonce: str = None, expires_in: int = 30) -> dict:
    body = base64.b64decode(req["body_b64"]) if req.get("body_b64") is not None else b""
    headers = {"content-digest": content_digest(body), "device-credential": credential}
    nonce = nonce or secrets.token_urlsafe(16)
    params = signature_params(now, now + expires_in, nonce, thumbprint(public_jwk(key)), http_alg(key))
    base = signature_base(req["method"], req["authority"], req["path"], req.get("query", ""), headers, params)
    headers["signature-input"] = "sig=" + params
    headers["signature"] = "sig=:%s:" % base64.b64encode(sign_raw(key, base.encode("utf-8"))).decode("ascii")
    return headers


# --- worked example (spec §8): re-derive the Ed25519 request signature from the document ---------

def worked_example(doc_path: str) -> dict:
    with open(doc_path, encoding="utf-8") as f:
        doc = f.read()
    row = re.search(r"\| ephemeral request key \(Ed25519\) \| `(\{[^`]*\})` \|", doc)
    d = b64url_decode(json.loads(row.group(1))["d"])
    key = ed25519.Ed25519PrivateKey.from_private_bytes(d)
    sent = re.search(r"```http\n(.*?)\n```", doc, re.S).group(1)
    head, body = sent.split("\n\n", 1)
    lines = head.split("\n")
    method, target, _ = lines[0].split(" ")
    fields = {k.lower(): v for k, v in (l.split(": ", 1) for l in lines[1:])}
    path, _, query = target.partition("?")
    signature_input = fields["signature-input"]
    created = int(re.search(r";created=(\d+)", signature_input).group(1))
    expires = int(re.search(r";expires=(\d+)", signature_input).group(1))
    nonce = re.search(r';nonce="([^"]+)"', signature_input).group(1)
    req = {"method": method, "authority": fields["host"], "path": path, "query": query, "body_b64": base64.b64encode(body.encode("utf-8")).decode()}
    ours = sign_request(key, fields["device-credential"], req, created, nonce=nonce, expires_in=expires - created)
    return {"ours": ours, "documented": {k: fields[k] for k in ("content-digest", "signature-input", "signature")}}


def main() -> None:
    state, step = sys.argv[1], sys.argv[2]
    args = json.load(sys.stdin)
    if step == "device":
        key = new_key(args["alg"])
        save_key(state, "device", key)
        out = {"jwk": public_jwk(key), "thumbprint": thumbprint(public_jwk(key))}
        if args.get("e2ee"):
            e2ee = x25519.X25519PrivateKey.generate()
            save_key(state, "e2ee", e2ee)
            out["e2ee_jwk"] = x25519_jwk(e2ee)
    elif step == "enroll":
        device = load_key(state, "device")
        body = {"challenge": args["challenge"], "deviceKey": public_jwk(device)}
        # Spec §3 step 4: ath = base64url(SHA-256(ASCII of the login token the body is posted with)).
        claims = {"chl": args["challenge"], "ath": b64url(hashlib.sha256(args["login_token"].encode("ascii")).digest())}
        if os.path.exists(os.path.join(state, "e2ee.pem")):
            # Spec §3: the e2ee key goes in the body and, the same JWK, in the proof the device key signs.
            body["e2eeKey"] = claims["e2eeKey"] = x25519_jwk(load_key(state, "e2ee"))
        body["attestation"] = {"format": "gh-jws-verdict", "evidence": args["evidence"]}
        body["proof"] = compact_jws(device, "gh-enrollment+jwt", claims)
        out = body
    elif step == "e2ee-encrypt":
        # e2ee.md §2: the device key id of an enrolled e2ee key is the signing device id.
        e2ee = load_key(state, "e2ee")
        req = dict(args)
        req["device_private_key"] = e2ee.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()).hex()
        req["device_key_id"] = thumbprint(public_jwk(load_key(state, "device")))
        out = e2ee_client.Client().encrypt(req)
    elif step == "credential-request":
        device = load_key(state, "device")
        ephemeral = new_key(args["alg"])
        save_key(state, "ephemeral", ephemeral)
        payload = {"chl": args["challenge"], "dev": thumbprint(public_jwk(device)), "jwk": public_jwk(ephemeral)}
        out = {"request": compact_jws(device, "gh-credential-request+jwt", payload)}
    elif step == "sign":
        ephemeral = load_key(state, "ephemeral")
        now = int(args.get("now") or time.time())
        out = {"headers": [sign_request(ephemeral, args["credential"], r, now) for r in args["requests"]]}
    elif step == "worked-example":
        out = worked_example(args["doc"])
    else:
        raise SystemExit("unknown step " + step)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

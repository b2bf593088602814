#!/usr/bin/python3
"""Verify a gatehouse passport with PyJWT, the way a Python upstream would.

stdin: {"token": str, "jwks": {...}, "audience": str, "issuer": str}
stdout: {"ok": true, "header": {...}, "claims": {...}} or {"ok": false, "error": str}
Pins typ (PyJWT 2.6 does not check it), takes the algorithm from the JWK found by kid (never
from the token header), and requires the time, audience and issuer claims.
"""
import json
import sys

import jwt

PASSPORT_TYP = "passport+jwt"
# the algorithm follows from the key type, never from the token header
ALG_OF_KEY = {("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "EdDSA"}


def verify(request):
    token = request["token"]
    header = jwt.get_unverified_header(token)
    if header.get("typ") != PASSPORT_TYP:
        raise ValueError("bad typ %r" % header.get("typ"))
    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(request["jwks"]).keys}
    jwk = keys.get(header.get("kid"))
    if jwk is None:
        raise ValueError("unknown kid %r" % header.get("kid"))
    published = next(k for k in request["jwks"]["keys"] if k.get("kid") == header.get("kid"))
    alg = ALG_OF_KEY.get((published.get("kty"), published.get("crv")))
    if alg is None or published.get("alg", alg) != alg:
        raise ValueError("key %r is not an ES256 or EdDSA signing key" % header.get("kid"))
    claims = jwt.decode(
        token,
        jwk.key,
        algorithms=[alg],
        audience=request["audience"],
        issuer=request["issuer"],
        options={"require": ["exp", "iat", "aud", "iss", "sub"]},
    )
    if claims["exp"] - claims["iat"] > 60:
        raise ValueError("lifetime too long")
    return {"ok": True, "header": header, "claims": claims}


def main():
    request = json.load(sys.stdin)
    try:
        result = verify(request)
    except Exception as error:  # every refusal is reported, not raised: the node test reads it
        result = {"ok": False, "error": "%s: %s" % (type(error).__name__, error)}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

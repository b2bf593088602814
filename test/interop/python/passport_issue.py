#!/usr/bin/python3
"""Issue a passport-shaped token with PyJWT, for gatehouse's verifier to judge.

stdin: {"pem": PKCS#8 private key, "alg": "ES256" | "EdDSA", "kid": str, "typ": str, "claims": {...}}
stdout: the compact JWS
"""
import json
import sys

import jwt


def main():
    request = json.load(sys.stdin)
    token = jwt.encode(
        request["claims"],
        request["pem"],
        algorithm=request["alg"],
        headers={"kid": request["kid"], "typ": request["typ"]},
    )
    sys.stdout.write(token)


if __name__ == "__main__":
    main()

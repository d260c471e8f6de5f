#!/usr/bin/python3
"""A third-party token issuer and TLS helpers for registry_auth_test.sh,
written with PyJWT and python3-cryptography (Debian), independent of
ocireg's own code:

  issuer.py kid KEY.pem                  libtrust key ID of a key's public half
  issuer.py token KEY.pem ALG ISS AUD SUB SCOPE [--exp-in S] [--kid K]
                  [--x5c CERT.pem] [--nokid]     a signed Docker token
  issuer.py jwks KEY.pem KID              a JWKS with the key's public half
  issuer.py expired-cert CA.pem CA.key KEY.pem OUT.pem   a server cert for
                  127.0.0.1 that expired yesterday
  issuer.py keepalive PORT CA.pem PID     one TLS connection: a request, a
                  SIGHUP to PID, another request on the same connection
"""
import base64
import hashlib
import http.client
import json
import os
import signal
import ssl
import sys
import time
import datetime

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def libtrust_kid(key):
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(b32[i:i + 4] for i in range(0, 48, 4))


def main(argv):
    cmd = argv[1]
    if cmd == "kid":
        print(libtrust_kid(load_key(argv[2])))
    elif cmd == "token":
        key_path, alg, iss, aud, sub, scope = argv[2:8]
        rest = argv[8:]
        opts = {}
        while rest:
            k = rest.pop(0)
            opts[k] = True if k == "--nokid" else rest.pop(0)
        key = load_key(key_path)
        now = int(time.time())
        exp = now + int(opts.get("--exp-in", "300"))
        access = []
        for s in scope.split(" "):
            if not s:
                continue
            t, rest_s = s.split(":", 1)
            name, actions = rest_s.rsplit(":", 1)
            access.append({"type": t, "name": name, "actions": actions.split(",")})
        claims = {"iss": iss, "aud": aud, "sub": sub, "iat": now, "nbf": now - 5,
                  "exp": exp, "jti": os.urandom(8).hex(), "access": access}
        headers = {}
        if "--nokid" not in opts:
            headers["kid"] = opts.get("--kid") or libtrust_kid(key)
        if "--x5c" in opts:
            with open(opts["--x5c"], "rb") as f:
                cert = x509.load_pem_x509_certificate(f.read())
            headers["x5c"] = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        print(jwt.encode(claims, key, algorithm=alg, headers=headers))
    elif cmd == "jwks":
        key = load_key(argv[2])
        pub = key.public_key()
        if hasattr(jwt.algorithms, "OKPAlgorithm") and "Ed25519" in type(pub).__name__:
            jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(pub))
        elif "EllipticCurve" in type(pub).__name__:
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(pub))
        else:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(pub))
        jwk["kid"] = argv[3]
        print(json.dumps({"keys": [jwk]}))
    elif cmd == "expired-cert":
        with open(argv[2], "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        ca_key = load_key(argv[3])
        key = load_key(argv[4])
        now = datetime.datetime.utcnow()
        import ipaddress
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
                .issuer_name(ca.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=10))
                .not_valid_after(now - datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        with open(argv[5], "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
    elif cmd == "keepalive":
        port, ca, pid = int(argv[2]), argv[3], int(argv[4])
        ctx = ssl.create_default_context(cafile=ca)
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
        c.request("GET", "/v2/")
        r = c.getresponse()
        r.read()
        first = c.sock.getpeercert()["subject"]
        os.kill(pid, signal.SIGHUP)
        time.sleep(1.0)
        c.request("GET", "/v2/")
        r2 = c.getresponse()
        r2.read()
        print("statuses", r.status, r2.status, "same-connection",
              c.sock.getpeercert()["subject"] == first)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)

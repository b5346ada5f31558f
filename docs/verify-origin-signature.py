#!/usr/bin/env python3
"""Verify keygate's origin signature in Python 3, with the standard library only.

keygate signs every call it forwards with HTTP Message Signatures (RFC 9421,
hmac-sha256, label and keyid "keygate") and binds the body with Content-Digest
(RFC 9530, sha-256). This file makes the same checks as verifyOriginSignature
in src/proxy/origin-signature.ts and gives the same reasons:

- the "keygate" signature is present and well formed (a strict RFC 8941 parser);
- alg is hmac-sha256, keyid is "keygate", created is within +/-max_age seconds,
  expires (if any) has not passed, and the nonce is not empty;
- @method @authority @path @query x-auth-method x-auth-product x-request-id are
  covered, and every x-auth-* header (also spelled with "_" or ".") and any
  X-Forwarded-For is covered;
- the HMAC verifies (hmac.compare_digest);
- a body is bound by a covered Content-Digest, and that digest matches the body;
- the nonce has not been seen before (NonceSet: one process only; several
  workers or hosts need a shared store, e.g. Redis SET nonce 1 NX EXAT expires).

Call verify() from your framework with the request as it reached you. Pass
the raw path and query as sent (WSGI: RAW_URI or REQUEST_URI, not the decoded
PATH_INFO), the Host you were called on, and the raw body bytes.

As a command, it reads JSON from stdin. The JSON is one request, or a list of
requests verified in order against one nonce set. It prints "ok" or the reason,
one line per request:

    {"method": "POST", "url": "https://origin.example/swap?amount=1",
     "headers": {"signature-input": "...", "signature": "...", ...},
     "body_base64": "eyJhIjoxfQ==", "now": 1772366400}

The secret comes from the ORIGIN_SIGNING_SECRET environment variable. "now"
(epoch seconds) and "body_base64" are optional.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import sys
import time
from urllib.parse import urlsplit

LABEL = "keygate"
ALG = "hmac-sha256"
DERIVED = ("@method", "@authority", "@path", "@query")
REQUIRED = DERIVED + ("x-auth-method", "x-auth-product", "x-request-id")
IDENTITY_HEADERS = (
    "x-auth-method", "x-auth-key-id", "x-auth-subject", "x-auth-issuer", "x-auth-env",
    "x-auth-scopes", "x-auth-product", "x-request-id", "x-forwarded-for",
)
PARAMETER_TYPES = {"created": int, "expires": int, "nonce": str, "keyid": str, "alg": str}
FIELD_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+\Z")


class Refusal(Exception):
    pass


class NonceSet:
    """Nonces seen in this process, forgotten once their window has passed."""

    def __init__(self, max_entries=100_000):
        self.seen = {}  # nonce -> expiry (epoch seconds); insertion order ~ expiry order
        self.max_entries = max_entries

    def check_and_remember(self, nonce, expires_at, now):
        if self.seen.get(nonce, 0) > now:
            return False
        self.seen.pop(nonce, None)
        for old in list(self.seen):
            if self.seen[old] > now and len(self.seen) < self.max_entries:
                break
            del self.seen[old]
        self.seen[nonce] = expires_at
        return True


DEFAULT_NONCES = NonceSet()


# ---- RFC 8941 structured fields: dictionaries of items and inner lists, strictly ----

class Token(str):
    pass


KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")
INTEGER = re.compile(r"-?[0-9]{1,15}(?![0-9.])")
STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+.^_`|~0-9A-Za-z:/-]*")
BYTES = re.compile(r":([A-Za-z0-9+/]*={0,2}):")
BOOLEAN = re.compile(r"\?([01])")


class FieldParser:
    def __init__(self, text):
        self.text = text
        self.pos = 0

    def match(self, pattern, what):
        found = pattern.match(self.text, self.pos)
        if not found:
            raise ValueError(f"expected a {what} at {self.pos}")
        self.pos = found.end()
        return found

    def peek(self):
        return self.text[self.pos:self.pos + 1]

    def dictionary(self):
        members = {}
        self.text = self.text.strip(" ")
        while self.pos < len(self.text):
            key = self.match(KEY, "key").group(0)
            if key in members:
                raise ValueError(f"duplicate key {key}")
            if self.peek() == "=":
                self.pos += 1
                members[key] = self.inner_list() if self.peek() == "(" else self.item()
            else:
                members[key] = (True, self.parameters())
            while self.peek() in (" ", "\t"):
                self.pos += 1
            if self.pos == len(self.text):
                break
            self.match(re.compile(r",[ \t]*"), "comma")
            if self.pos == len(self.text):
                raise ValueError("trailing comma")
        return members

    def inner_list(self):
        self.pos += 1  # "("
        items = []
        while True:
            while self.peek() == " ":
                self.pos += 1
            if self.peek() == ")":
                self.pos += 1
                return (items, self.parameters())
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                raise ValueError(f"unexpected character at {self.pos}")

    def item(self):
        return (self.bare_item(), self.parameters())

    def parameters(self):
        params = {}
        while self.peek() == ";":
            self.pos += 1
            while self.peek() == " ":
                self.pos += 1
            key = self.match(KEY, "parameter key").group(0)
            if key in params:
                raise ValueError(f"duplicate parameter {key}")
            value = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            params[key] = value
        return params

    def bare_item(self):
        c = self.peek()
        if c == "-" or c.isdigit():
            return int(self.match(INTEGER, "integer").group(0))
        if c == '"':
            return re.sub(r'\\(["\\])', r"\1", self.match(STRING, "string").group(1))
        if c == ":":
            encoded = self.match(BYTES, "byte sequence").group(1)
            if len(encoded) % 4:
                raise ValueError("byte sequence is not padded base64")
            return base64.b64decode(encoded, validate=True)
        if c == "?":
            return self.match(BOOLEAN, "boolean").group(1) == "1"
        if c.isascii() and (c.isalpha() or c == "*"):
            return Token(self.match(TOKEN, "token").group(0))
        raise ValueError(f"unexpected character at {self.pos}")


def dictionary(headers, name):
    try:
        return FieldParser(headers.get(name, "")).dictionary()
    except ValueError as error:
        raise Refusal(f"malformed {name}: {error}")


def serialize_bare(value):
    if isinstance(value, Token):
        return str(value)
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode() + ":"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialize_parameters(params):
    return "".join(f";{key}" if value is True else f";{key}={serialize_bare(value)}" for key, value in params.items())


def serialize_inner_list(inner_list):
    items, params = inner_list
    return "(" + " ".join(serialize_bare(v) + serialize_parameters(p) for v, p in items) + ")" + serialize_parameters(params)


# ---- RFC 9421 signature base ----

def component_value(method, url, headers, name):
    parts = urlsplit(url)
    if name == "@method":
        return method
    if name == "@authority":
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        default_port = {"http": 80, "https": 443}.get(parts.scheme)
        return host if parts.port in (None, default_port) else f"{host}:{parts.port}"
    if name == "@path":
        return parts.path or "/"
    if name == "@query":
        return "?" + parts.query
    return headers[name].strip()


def signature_base(method, url, headers, components, signature_params):
    lines = [f'"{name}": {component_value(method, url, headers, name)}' for name in components]
    return "\n".join(lines + [f'"@signature-params": {signature_params}'])


# ---- Verifier ----

def normalize_headers(headers):
    """A dict or a list of [name, value] pairs -> lowercase names, repeated fields joined with ", "."""
    pairs = headers.items() if isinstance(headers, dict) else headers
    combined = {}
    for name, value in pairs:
        name = name.lower()
        combined[name] = f"{combined[name]}, {value}" if name in combined else value
    return combined


def verify(method, url, headers, body, secret, *, now=None, max_age=60, nonces=DEFAULT_NONCES,
           require_body_digest=True, key_id="keygate"):
    """(True, identity headers) or (False, reason), like verifyOriginSignature."""
    try:
        return True, _verify(method, url, normalize_headers(headers), body or b"", secret,
                             time.time() if now is None else now, max_age, nonces, require_body_digest, key_id)
    except Refusal as refusal:
        return False, str(refusal)


def _verify(method, url, headers, body, secret, now, max_age, nonces, require_body_digest, key_id):
    # Cheapest first; the nonce is remembered only once everything else passed.
    signature_input = dictionary(headers, "signature-input").get(LABEL)
    signature = dictionary(headers, "signature").get(LABEL)
    if signature_input is None or signature is None:
        raise Refusal("no keygate signature")
    if not isinstance(signature_input[0], list):
        raise Refusal("malformed signature-input: not an inner list")
    if not isinstance(signature[0], bytes) or signature[1]:
        raise Refusal("malformed signature: not a byte sequence")

    params = signature_input[1]
    for name, value in params.items():
        expected = PARAMETER_TYPES.get(name)
        if expected is None:
            raise Refusal(f"unexpected signature parameter {name}")
        if type(value) is not expected:  # bool is an int subclass, Token a str one: exact types only
            raise Refusal(f"signature parameter {name} is not {'an integer' if expected is int else 'a string'}")
    if params.get("alg") != ALG:
        raise Refusal(f"alg is not {ALG}")
    if params.get("keyid") != key_id:
        raise Refusal(f"keyid is not {key_id}")
    created = params.get("created")
    if created is None:
        raise Refusal("created is missing")
    if now - created > max_age:
        raise Refusal("created is too old")
    if created - now > max_age:
        raise Refusal("created is in the future")
    if "expires" in params and now > params["expires"]:
        raise Refusal("signature expired")
    nonce = params.get("nonce")
    if not nonce:
        raise Refusal("nonce is missing")

    components = []
    for value, component_params in signature_input[0]:
        if type(value) is not str:
            raise Refusal("malformed signature-input: a component is not a string")
        if component_params:
            raise Refusal(f"unsupported component parameter on {value}")
        if value not in DERIVED and not FIELD_NAME.match(value):
            raise Refusal(f"unsupported component {value}")
        if value in components:
            raise Refusal(f"duplicate component {value}")
        components.append(value)

    for name in REQUIRED:
        if name not in components:
            raise Refusal(f"{name} is not covered")
    for name in components:
        if not name.startswith("@") and name not in headers:
            raise Refusal(f"covered header {name} is missing")
    for name in headers:
        spelled = re.sub(r"[_.]", "-", name)
        if (spelled.startswith("x-auth-") or spelled == "x-forwarded-for") and name not in components:
            raise Refusal(f"header {name} is not covered")

    base = signature_base(method, url, headers, components, serialize_inner_list(signature_input))
    expected_mac = hmac.new(secret.encode(), base.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected_mac, signature[0]):
        raise Refusal("signature does not verify")

    if "content-digest" in components:
        digest = dictionary(headers, "content-digest").get("sha-256")
        if digest is None or not isinstance(digest[0], bytes):
            raise Refusal("content-digest has no sha-256 byte sequence")
        if digest[0] != hashlib.sha256(body).digest():
            raise Refusal("content-digest does not match the body")
    elif require_body_digest:
        length = headers.get("content-length")
        if "transfer-encoding" in headers or (length is not None and length.strip() != "0") or body:
            raise Refusal("body is not covered by content-digest")

    if not nonces.check_and_remember(nonce, created + max_age, now):
        raise Refusal("replayed nonce")

    return {name: headers[name].strip() for name in IDENTITY_HEADERS if name in components}


def main():
    secret = os.environ.get("ORIGIN_SIGNING_SECRET")
    if not secret:
        print("ORIGIN_SIGNING_SECRET is not set", file=sys.stderr)
        return 2
    described = json.load(sys.stdin)
    nonces = NonceSet()
    for request in described if isinstance(described, list) else [described]:
        body = base64.b64decode(request.get("body_base64") or "")
        ok, result = verify(request["method"], request["url"], request.get("headers", {}), body, secret,
                            now=request.get("now"), nonces=nonces)
        print("ok" if ok else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

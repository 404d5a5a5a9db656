"""Licence certificates: canonical JSON signed with Ed25519.

Anyone can check a certificate offline with the public key published at
`/.well-known/blanket-licence-key`: the signature covers the canonical encoding of the payload
(keys sorted, no spaces, UTF-8). Whether it is still in force (not expired, not revoked) is
answered by `POST /api/v1/certificates/verify`.

The private key comes from `BLANKET_SIGNING_KEY` (base64 of the 32-byte raw Ed25519 key);
outside production a key is generated once into the var directory so the demo works.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALGORITHM = "Ed25519"


def canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=1)
def signing_key() -> Ed25519PrivateKey:
    configured = getattr(settings, "BLANKET_SIGNING_KEY", None)
    if configured:
        try:
            return Ed25519PrivateKey.from_private_bytes(base64.b64decode(configured))
        except ValueError as exc:
            raise ImproperlyConfigured(
                "BLANKET_SIGNING_KEY must be base64 of a 32-byte Ed25519 key"
            ) from exc
    if getattr(settings, "BLANKET_REQUIRE_SIGNING_KEY", False):
        raise ImproperlyConfigured("BLANKET_SIGNING_KEY is required in production")
    path = Path(settings.VAR_DIR) / "licence-signing.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        path.write_bytes(base64.b64encode(raw))
        path.chmod(0o600)
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_bytes()))


def public_key_raw(key: Ed25519PublicKey | None = None) -> bytes:
    key = key or signing_key().public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | None = None) -> str:
    return hashlib.sha256(public_key_raw(key)).hexdigest()[:16]


def public_key_document() -> dict:
    """What `/.well-known/blanket-licence-key` serves."""
    key = signing_key().public_key()
    return {
        "algorithm": ALGORITHM,
        "key_id": key_id(key),
        "public_key": _b64(public_key_raw(key)),
        "public_key_pem": key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "encoding": "signature over canonical JSON: sorted keys, separators (',', ':'), UTF-8",
    }


def sign(payload: dict) -> tuple[str, str]:
    """(signature, key_id) for the payload."""
    key = signing_key()
    return _b64(key.sign(canonical(payload))), key_id(key.public_key())


def signature_valid(payload: dict, signature: str, *, public_key: bytes | None = None) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key or public_key_raw())
        key.verify(_unb64(signature), canonical(payload))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True

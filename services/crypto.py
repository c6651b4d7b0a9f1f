"""Encryption at rest for secret table columns (AES-256-GCM, random 96-bit nonce)."""
from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"
MASK = "••••"


class SecretBox:
    def __init__(self, key: bytes):
        self._aead = AESGCM(key)

    def encrypt(self, value) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, str(value).encode(), None)
        return PREFIX + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, value):
        if not isinstance(value, str) or not value.startswith(PREFIX):
            return value  # None, or a value stored before the column was made secret
        raw = base64.b64decode(value[len(PREFIX):])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], None).decode()
        except InvalidTag:
            return None  # written under another key: unreadable, never shown as garbage


def mask(clear) -> str | None:
    """``••••1234``: enough to recognise a key, not to use it."""
    if clear is None:
        return None
    text = str(clear)
    return MASK + (text[-4:] if len(text) > 8 else "")

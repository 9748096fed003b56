"""Personal data (PIPL): masking for display, encryption at rest, keyed hashes for look-ups.

ID-card numbers are stored encrypted (Fernet) with an HMAC-SHA256 of the number beside them, so uniqueness
and look-ups never need the clear value. Neither phone nor ID-card numbers are ever logged or put in job
arguments, Redis keys or exports the reader may not see.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from functools import lru_cache

from cryptography.fernet import Fernet

from youthlink.config import get_settings
from youthlink.errors import Invalid

ID_CARD_RE = re.compile(r"^\d{17}[\dX]$")
PHONE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
ID_CARD_IN_TEXT = re.compile(r"(?<![\dA-Za-z])(\d{4})\d{10}(\d{3}[\dXx])(?![\dA-Za-z])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def mask_name(name: str) -> str:
    """林晓 → 林*, 欧阳明月 → 欧***: the family name stays, the rest is hidden."""
    name = name.strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else "*"


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def mask_id_card(number: str) -> str:
    """3303**********123X: the region prefix and the last four stay, as on Chinese certificates."""
    return f"{number[:4]}{'*' * (len(number) - 8)}{number[-4:]}"


def normalize_id_card(raw: str) -> str:
    """A mainland resident ID number (GB 11643-1999): 18 characters with a valid check digit."""
    number = raw.strip().upper()
    if not ID_CARD_RE.match(number):
        raise Invalid("INVALID_ID_CARD", "身份证号格式不正确", "idCard")
    check = _ID_CHECK[sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True)) % 11]
    if number[17] != check:
        raise Invalid("INVALID_ID_CARD", "身份证号校验位不正确", "idCard")
    return number


def _derived(label: bytes) -> bytes:
    secret = get_settings().secret().encode()
    return hmac.new(secret, label, hashlib.sha256).digest()


@lru_cache
def _fernet(key: str | None) -> Fernet:
    if key:
        return Fernet(key.encode())
    return Fernet(base64.urlsafe_b64encode(_derived(b"youthlink id-card encryption")))


def _cipher() -> Fernet:
    key = get_settings().data_key
    return _fernet(key.get_secret_value() if key else None)


def encrypt_id_card(number: str) -> bytes:
    return _cipher().encrypt(number.encode())


def decrypt_id_card(cipher: bytes) -> str:
    return _cipher().decrypt(cipher).decode()


def keyed_hash(value: str, purpose: str) -> str:
    """HMAC-SHA256 of a personal value, for unique indexes and look-ups (and Redis keys) without the value."""
    return hmac.new(_derived(purpose.encode()), value.encode(), hashlib.sha256).hexdigest()


def redact(text: str) -> str:
    text = ID_CARD_IN_TEXT.sub(lambda m: f"{m.group(1)}**********{m.group(2)}", text)
    return PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


def install_log_redaction() -> None:
    """Belt and braces: any phone or ID-card number that slips into a log record is masked as it is made.

    A record factory sees every record of the process, whichever logger or handler it goes to (a filter on
    the root logger would not see records propagated from child loggers).
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_personal_data", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    factory.redacts_personal_data = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)

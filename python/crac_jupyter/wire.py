"""Jupyter wire-protocol messages as the relay sees them: frames split at the delimiter, the
HMAC signature checked with one side's key and written again with the other's.

A message on a ROUTER/DEALER socket is ``[ident..., b"<IDS|MSG>", signature, header, parent,
metadata, content, buffer...]``; on IOPub the idents are the topic. The signature is the HMAC of
the four JSON frames (header, parent, metadata, content), hex encoded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

DELIM = b"<IDS|MSG>"


class WireError(ValueError):
    """A message that is not a well-formed, correctly signed Jupyter message."""


@dataclass
class Message:
    """One message: routing frames, the four signed frames, and binary buffers."""

    idents: list[bytes]
    header: bytes
    parent: bytes
    metadata: bytes
    content: bytes
    buffers: list[bytes] = field(default_factory=list)

    def header_dict(self) -> dict:
        """The header, decoded."""
        return json.loads(self.header)

    def parent_dict(self) -> dict:
        """The parent header, decoded."""
        return json.loads(self.parent)

    def content_dict(self) -> dict:
        """The content, decoded."""
        return json.loads(self.content)

    @property
    def msg_type(self) -> str:
        """The header's msg_type ("" when missing)."""
        return str(self.header_dict().get("msg_type", ""))

    @property
    def parent_msg_id(self) -> str:
        """The parent header's msg_id ("" when there is no parent)."""
        return str(self.parent_dict().get("msg_id", ""))


class Signer:
    """Checks and writes signatures with one key (an empty key: no signatures)."""

    def __init__(self, key: bytes, scheme: str = "hmac-sha256"):
        if not scheme.startswith("hmac-"):
            raise WireError(f"signature scheme {scheme!r} is not supported; use hmac-sha256")
        digest = getattr(hashlib, scheme[len("hmac-"):], None)
        if digest is None:
            raise WireError(f"signature scheme {scheme!r} is not supported; use hmac-sha256")
        self.key = key
        self.digest = digest

    def sign(self, parts: list[bytes]) -> bytes:
        """The hex signature of the four JSON frames."""
        if not self.key:
            return b""
        mac = hmac.new(self.key, digestmod=self.digest)
        for p in parts:
            mac.update(p)
        return mac.hexdigest().encode()

    def parse(self, frames: list[bytes]) -> Message:
        """Splits and checks a received message; raises WireError when it is malformed or its
        signature is not this key's."""
        try:
            i = frames.index(DELIM)
        except ValueError:
            raise WireError("message without the <IDS|MSG> delimiter") from None
        if len(frames) < i + 6:
            raise WireError("message with fewer than four JSON frames")
        sig = frames[i + 1]
        parts = frames[i + 2 : i + 6]
        if self.key and not hmac.compare_digest(sig, self.sign(parts)):
            raise WireError("message with a bad signature")
        return Message(frames[:i], *parts, buffers=list(frames[i + 6 :]))

    def serialize(self, msg: Message) -> list[bytes]:
        """The frames of msg, signed with this key."""
        parts = [msg.header, msg.parent, msg.metadata, msg.content]
        return [*msg.idents, DELIM, self.sign(parts), *parts, *msg.buffers]


def dumps(obj) -> bytes:
    """JSON as Jupyter's session writes it (compact enough, UTF-8)."""
    return json.dumps(obj, default=str).encode()

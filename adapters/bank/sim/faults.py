"""What the bank simulator does wrong on purpose, and the broken messages it sends.

``--faults`` takes ``name=value`` pairs separated by commas; every probability is per
collection:

===================  ======================================================  =========
name                 effect                                                  default
===================  ======================================================  =========
``latency``          bank-side processing delay before sending, ``A-B`` ms   ``0-0``
``lost_reply``       the reply is never read: the bank treats it as timeout  ``0``
``query``            on a timeout, share that first asks the status (交易状态  ``0.5``
                     查询): settled if the utility has it
``resend``           then, share resolved by resending the serial (the rest  ``0.5``
                     by a reversal, 冲正)
``duplicate``        a successful serial is sent again                       ``0``
``malformed``        a broken message is sent besides (bad MAC, GBK          ``0``
                     garbage, bad length header, truncated frame, in turn)
``processing``       the statement still lists a success as 在途             ``0``
===================  ======================================================  =========

>>> plan = FaultPlan.parse("lost_reply=0.1,latency=5-20,malformed=0.01")
>>> plan.lost_reply, plan.latency_ms, plan.resend
(0.1, (5, 20), 0.5)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum

from powerbus.adapters.bank.protocol.codec import HEADER_SIZE
from powerbus.adapters.bank.protocol.framing import frame
from powerbus.adapters.bank.protocol.mac import MAC_SIZE, KeyRing
from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["FaultPlan", "Malformed", "corrupt"]

# The header's last field (resp_msg, GBK) starts here; see protocol.messages.HEADER_LAYOUT.
_RESP_MSG_AT = HEADER_SIZE - 40


class Malformed(str, Enum):
    """The classes of broken message the simulator sends."""

    BAD_MAC = "bad_mac"
    GBK_GARBAGE = "gbk_garbage"
    BAD_LENGTH = "bad_length"
    TRUNCATED = "truncated"


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultPlan:
    latency_ms: tuple[int, int] = (0, 0)
    lost_reply: float = 0.0
    query: float = 0.5
    resend: float = 0.5
    duplicate: float = 0.0
    malformed: float = 0.0
    processing: float = 0.0

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        """Parse ``name=value,...``; ``InvalidArgument`` naming ``--faults`` otherwise."""
        values: dict[str, object] = {}
        names = {f.name for f in dataclasses.fields(cls)} - {"latency_ms"} | {"latency"}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, raw = part.partition("=")
            if not sep or name not in names:
                raise InvalidArgument(
                    "--faults", f"{part!r}: expected one of {sorted(names)}=VALUE"
                )
            try:
                if name == "latency":
                    low, _, high = raw.partition("-")
                    values["latency_ms"] = (int(low), int(high or low))
                else:
                    values[name] = float(raw)
            except ValueError:
                raise InvalidArgument("--faults", f"{part!r}: not a number") from None
        plan = cls(**values)  # type: ignore[arg-type]
        for name in names - {"latency"}:
            if not 0.0 <= getattr(plan, name) <= 1.0:
                raise InvalidArgument("--faults", f"{name} must be a probability in [0, 1]")
        return plan


def corrupt(wire: bytes, kind: Malformed, *, keys: KeyRing, bank_code: str) -> bytes:
    """A broken copy of a well-formed framed message ``wire``.

    BAD_MAC and GBK_GARBAGE keep the frame intact (the server answers and carries on);
    GBK_GARBAGE is correctly signed, so only its text is at fault. BAD_LENGTH and
    TRUNCATED break the stream itself and are sent on a connection of their own.
    """
    body = wire[6:]
    if kind is Malformed.BAD_MAC:
        flipped = b"0" if body[-1:] != b"0" else b"1"
        return wire[:-1] + flipped
    if kind is Malformed.GBK_GARBAGE:
        unsigned = bytearray(body[:-MAC_SIZE])
        unsigned[_RESP_MSG_AT : _RESP_MSG_AT + 2] = b"\x81\x20"  # lead byte, invalid trail
        return frame(bytes(unsigned) + keys.sign(bank_code, bytes(unsigned)))
    if kind is Malformed.BAD_LENGTH:
        return b"00x1" + wire[4:]
    return wire[: len(wire) // 2]

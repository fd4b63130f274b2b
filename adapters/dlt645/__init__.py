"""DL/T 645-2007 meters through transparent serial gateways: frames (``frame``), BCD
values (``bcd``), data identifiers (``identifiers``), stored history (``history``) and
the line client (``client``). The codec modules import no network library.

>>> from powerbus.adapters.dlt645 import Control, Frame
>>> Frame("000000000161", Control.READ, bytes.fromhex("00010102")).encode(preamble=0).hex(" ")
'68 61 01 00 00 00 00 68 11 04 33 34 34 35 17 16'
"""

from powerbus.adapters.dlt645.bcd import (
    BcdError,
    decode_bcd,
    decode_datetime,
    encode_bcd,
    encode_datetime,
)
from powerbus.adapters.dlt645.client import Dlt645Client
from powerbus.adapters.dlt645.frame import (
    BROADCAST,
    Control,
    Corrupt,
    Frame,
    FrameDecoder,
    ReplyPattern,
    checksum,
    decode_address,
    encode_address,
)
from powerbus.adapters.dlt645.history import (
    DailyFreeze,
    ProfileRecord,
    decode_profile_records,
    encode_profile_record,
)
from powerbus.adapters.dlt645.identifiers import DI, ITEMS, LoadProfile, daily_freeze, energy_rate

__all__ = [
    "BROADCAST",
    "DI",
    "ITEMS",
    "BcdError",
    "Control",
    "Corrupt",
    "DailyFreeze",
    "Dlt645Client",
    "Frame",
    "FrameDecoder",
    "LoadProfile",
    "ProfileRecord",
    "ReplyPattern",
    "checksum",
    "daily_freeze",
    "decode_address",
    "decode_bcd",
    "decode_datetime",
    "decode_profile_records",
    "encode_address",
    "encode_bcd",
    "encode_datetime",
    "encode_profile_record",
    "energy_rate",
]

"""Quality, rule and method as stored: the ``powerbus.metering.v1`` enum numbers, which
never change once published (``tests/metering`` checks these tables against the
generated code, so the store needs no protobuf import).
"""

from __future__ import annotations

from powerbus.nodes.metering.vee import EstimationMethod, QualityCode, VeeRule

__all__ = ["METHOD", "METHOD_OF", "QUALITY", "QUALITY_OF", "RULE", "RULE_OF"]

# Declaration order is the proto's; QualityCode has no UNSPECIFIED (0) member.
QUALITY = {q: n for n, q in enumerate(QualityCode, start=1)}
RULE = {r: n for n, r in enumerate(VeeRule)}
METHOD = {m: n for n, m in enumerate(EstimationMethod)}
QUALITY_OF = {n: q for q, n in QUALITY.items()}
RULE_OF = {n: r for r, n in RULE.items()}
METHOD_OF = {n: m for m, n in METHOD.items()}

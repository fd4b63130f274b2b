"""The legacy CIS adapter node: powerbus.crm.v1.Customers served by a legacy CORBA CIS.

>>> from powerbus.nodes.legacy_cis import LegacyCisNode
>>> LegacyCisNode.kind
'legacy-cis'
"""

from powerbus.nodes.legacy_cis.config import LegacySettings
from powerbus.nodes.legacy_cis.node import LegacyCisNode

__all__ = ["LegacyCisNode", "LegacySettings"]

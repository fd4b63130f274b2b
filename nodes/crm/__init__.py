"""The CRM node: customers, accounts, service points, the panoramic customer view, and
service tickets with the SLA clocks of the utility's service commitments.

>>> from powerbus.nodes.crm import CrmNode
>>> CrmNode.kind
'crm'
"""

from powerbus.nodes.crm.config import CrmSettings
from powerbus.nodes.crm.masking import Audience
from powerbus.nodes.crm.node import AUDIENCE_KEY, CrmNode
from powerbus.nodes.crm.view import PanoramicView

__all__ = ["AUDIENCE_KEY", "Audience", "CrmNode", "CrmSettings", "PanoramicView"]

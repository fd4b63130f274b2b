"""Legacy CORBA systems as bus services: a mapping declared as data (``mapping``), its
value converters (``values``), and the engine that runs it against a legacy object.

>>> from powerbus.adapters.corba.legacy import MappingSpec, legacy_file
>>> MappingSpec.load(legacy_file("LegacyCIS.crm.toml")).proto_service
'powerbus.crm.v1.Customers'
"""

from powerbus.adapters.corba.legacy.engine import LegacyMethod, LegacyService
from powerbus.adapters.corba.legacy.mapping import MappingSpec
from powerbus.adapters.corba.legacy.paths import legacy_file
from powerbus.adapters.corba.legacy.target import LegacyTarget

__all__ = ["LegacyMethod", "LegacyService", "LegacyTarget", "MappingSpec", "legacy_file"]

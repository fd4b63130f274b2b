"""Per-service policy: picker, timeouts, retries, outlier ejection, breakers, health checks
and fault-tolerance mode, from the bus's policy file and changed at run time.

``powerbus policy set SERVICE KEY=VALUE ...`` stores overrides in the registry database;
every bus instance polls them (:class:`PolicyWatcher`) and every proxyless client watches
them through ``powerbus.policy.v1.Policies/WatchPolicies``.

>>> from powerbus.bus.policy import PolicyBook
>>> PolicyBook().policy("powerbus.echo.v1.Echo").calls.retry.max_attempts
3
"""

from powerbus.bus.kernel.policy import PolicyKey, ServicePolicy, policy_keys
from powerbus.bus.policy.book import (
    ALL_SERVICES,
    PolicyBook,
    PolicyDefaults,
    StoredPolicy,
    load_policy_defaults,
)
from powerbus.bus.policy.servicer import PoliciesServicer, policy_message
from powerbus.bus.policy.store import PolicyStore
from powerbus.bus.policy.watcher import PolicyListener, PolicyWatcher

__all__ = [
    "ALL_SERVICES",
    "PoliciesServicer",
    "PolicyBook",
    "PolicyDefaults",
    "PolicyKey",
    "PolicyListener",
    "PolicyStore",
    "PolicyWatcher",
    "ServicePolicy",
    "StoredPolicy",
    "load_policy_defaults",
    "policy_keys",
    "policy_message",
]

"""A development emulator of HubSpot's CRM batch endpoints.

`POST /crm/v3/objects/{objectType}/batch/{upsert,read,create}` (subscriptions, contacts,
companies, deals, custom objects) and `/crm/v4/associations/{from}/{to}/batch/{associate/
default,create,read}`, each also under its date-versioned path, with HubSpot's auth errors,
limits, one rate-limit budget and its headers, 207 multi-status, merge semantics and
injectable faults (queued, random, by content, a total outage), plus a control API under
`/_emulator/`. Used by the demo, the integration tests and the benchmarks; never by
`service/` (which must not import this package).

    from devstack.emulator import EmulatorConfig, start_in_thread

    emulator = start_in_thread(EmulatorConfig(tokens=frozenset({"t"})))
    ...  # point the client at emulator.url
    emulator.control.store()
    emulator.stop()
"""

from devstack.emulator.client import (
    AssociationEntry,
    ControlClient,
    ControlError,
    RequestEntry,
    StoredRecord,
    WriteEntry,
)
from devstack.emulator.clock import Clock, FakeClock, SystemClock
from devstack.emulator.config import (
    DEFAULT_TOKEN,
    ConfigError,
    EmulatorConfig,
    config_from_dict,
    load_config,
)
from devstack.emulator.configcheck import FAULT_KINDS
from devstack.emulator.runner import RunningEmulator, start_in_subprocess, start_in_thread

__all__ = [
    "DEFAULT_TOKEN",
    "FAULT_KINDS",
    "AssociationEntry",
    "Clock",
    "ConfigError",
    "ControlClient",
    "ControlError",
    "EmulatorConfig",
    "FakeClock",
    "RequestEntry",
    "RunningEmulator",
    "StoredRecord",
    "SystemClock",
    "WriteEntry",
    "config_from_dict",
    "load_config",
    "start_in_subprocess",
    "start_in_thread",
]

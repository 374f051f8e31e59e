"""A development emulator of HubSpot's CRM batch upsert endpoint.

`POST /crm/v3/objects/{objectType}/batch/upsert` and `/crm/objects/{version}/{objectType}/
batch/upsert`, with HubSpot's auth errors, limits, rate-limit headers, 207 multi-status,
merge semantics and injectable faults, plus a control API under `/_emulator/`. Used by the
demo, the integration tests and the benchmarks; never by `service/` (which must not import
this package).

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

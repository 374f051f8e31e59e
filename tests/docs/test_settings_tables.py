"""The settings tables say what the code does: docs/settings.md lists every setting of
service/entry/settings.py with its default, and the README's essential settings are the
public contract's, with the contract's defaults."""

from __future__ import annotations

import json
from enum import Enum

from pydantic.fields import FieldInfo

from service.entry.settings import Settings
from tests.docs.markdown import DOCS, README, code_names, table

HEADER = ["Variable", "Default", "Meaning"]

# The public contract's settings and their defaults, as the contract writes them (its names are
# fixed; the contract lives outside this repository, so its table is copied here).
CONTRACT_DEFAULTS = {
    "KAFKA_BOOTSTRAP_SERVERS": "required",
    "KAFKA_INPUT_TOPIC": "`subscription-events`",
    "KAFKA_OUTPUT_TOPIC": "`subscription-upsert-results`",
    "KAFKA_DLQ_TOPIC": "`subscription-events-dlq`",
    "KAFKA_GROUP_ID": "`subscription-upserter`",
    "HUBSPOT_BASE_URL": "`https://api.hubapi.com`",
    "HUBSPOT_ACCESS_TOKEN": "required (unless OAuth refresh settings are given)",
    "HUBSPOT_OBJECT_TYPE": "`subscriptions`",
    "HUBSPOT_ID_PROPERTY": "required",
    "BATCH_MAX_SIZE": "`100`",
    "BATCH_MAX_WAIT_MS": "`1000`",
    "DELIVERY_GUARANTEE": "`at_least_once`",
    "HTTP_PORT": "`8080`",
}
ESSENTIAL_COUNT = 8

# Settings without a default value of their own (None) that the service fills in from others:
# the table shows how, instead of "unset".
FILLED_IN = {
    "HUBSPOT_ACCESS_TOKEN": "required unless `HUBSPOT_ACCESS_TOKEN_FILE` or OAuth settings",
    "HUBSPOT_OAUTH_TOKEN_URL": "`{HUBSPOT_BASE_URL}/oauth/v3/token`",
    "KAFKA_TRANSACTIONAL_ID": "`{KAFKA_GROUP_ID}-{hostname}`",
}


def shown_default(field: FieldInfo) -> str:
    """A field's default as the tables write it: `value`, required or unset."""
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    if default is None:
        return "unset"
    if isinstance(default, Enum):
        default = default.value
    if isinstance(default, bool):
        default = "true" if default else "false"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    text = json.dumps(default) if isinstance(default, dict) else str(default)
    return f"`{text}`"


def documented(rows: list[dict[str, str]]) -> dict[str, str]:
    """Variable -> default cell; a row may name several variables that share a default."""
    defaults: dict[str, str] = {}
    for row in rows:
        names = code_names(row["Variable"])
        assert names, f"a row names no variable: {row}"
        for name in names:
            assert name not in defaults, f"{name} is listed twice"
            defaults[name] = row["Default"]
    return defaults


def settings_doc() -> dict[str, str]:
    return documented(table((DOCS / "settings.md").read_text(), HEADER))


def test_the_settings_page_lists_exactly_the_settings_the_service_reads() -> None:
    assert set(settings_doc()) == {name.upper() for name in Settings.model_fields}


def test_the_settings_page_gives_each_setting_its_default() -> None:
    doc = settings_doc()
    wrong = {}
    for name, field in Settings.model_fields.items():
        variable = name.upper()
        expected = shown_default(field)
        if expected == "unset" and variable in FILLED_IN:
            expected = FILLED_IN[variable]
        if expected == "required":
            matches = doc[variable].startswith("required")
        else:
            matches = doc[variable] == expected
        if not matches:
            wrong[variable] = (doc[variable], expected)
    assert wrong == {}, "documented default vs the code's"


def test_the_settings_page_starts_with_the_contract_block() -> None:
    rows = table((DOCS / "settings.md").read_text(), HEADER)
    first = [name for row in rows[: len(CONTRACT_DEFAULTS)] for name in code_names(row["Variable"])]
    assert first == list(CONTRACT_DEFAULTS)


def test_the_readme_lists_eight_contract_settings_with_the_contract_defaults() -> None:
    readme = documented(table(README.read_text(), HEADER))
    assert len(readme) == ESSENTIAL_COUNT
    assert set(readme) <= set(CONTRACT_DEFAULTS), "the README's table holds contract names only"
    assert readme == {name: CONTRACT_DEFAULTS[name] for name in readme}


def test_the_contract_defaults_are_the_code_defaults() -> None:
    fields = {name.upper(): field for name, field in Settings.model_fields.items()}
    for variable, contract in CONTRACT_DEFAULTS.items():
        code = shown_default(fields[variable])
        if contract.startswith("required ("):  # required unless others are given: a check
            assert code == "unset", variable  # across settings, not a required field
        else:
            assert code == contract, variable

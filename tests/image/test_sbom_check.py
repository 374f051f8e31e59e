"""The SBOM check itself: it finds a locked package the SBOM lacks or lists at another
version, and ignores lock entries whose marker excludes the image's platform."""

from __future__ import annotations

from tests.image.sbom import lock_mismatches, locked_versions, sbom_versions

LOCK = """\
# comment
httpx==0.28.1 \\
    --hash=sha256:aaaa
    # via subscription-upserter
prometheus-client==0.26.0 \\
    --hash=sha256:bbbb
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:cccc
typing-extensions==4.16.0 ; python_full_version < '3.13' \\
    --hash=sha256:dddd
"""


def _sbom(*components: tuple[str, str]) -> dict[str, object]:
    return {
        "bomFormat": "CycloneDX",
        "components": [
            {"type": "library", "name": name, "version": version} for name, version in components
        ],
    }


def test_lock_entries_for_other_platforms_are_not_expected_in_the_image() -> None:
    assert locked_versions(LOCK) == {
        "httpx": "0.28.1",
        "prometheus-client": "0.26.0",
        "typing-extensions": "4.16.0",
    }


def test_an_sbom_with_every_locked_version_under_its_distribution_name_passes() -> None:
    found = sbom_versions(
        _sbom(("httpx", "0.28.1"), ("prometheus_client", "0.26.0"), ("typing_extensions", "4.16.0"))
    )
    assert lock_mismatches(locked_versions(LOCK), found) == {}


def test_a_missing_package_and_another_version_are_reported() -> None:
    found = sbom_versions(_sbom(("httpx", "0.27.0"), ("typing_extensions", "4.16.0")))
    assert lock_mismatches(locked_versions(LOCK), found) == {
        "httpx": "locked 0.28.1, SBOM has 0.27.0",
        "prometheus-client": "locked 0.26.0, SBOM has nothing",
    }

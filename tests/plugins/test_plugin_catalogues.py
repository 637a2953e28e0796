"""Each plugin's Chinese catalogue is complete: every translatable string in its code and
templates is translated, nothing fuzzy, placeholders kept (screens must be fully zh_CN)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "translations").is_dir())


def catalogue(plugin: str):  # type: ignore[no-untyped-def]
    with (ROOT / "plugins" / plugin / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale="zh_Hans_CN")


def source_messages(plugin: str) -> set[str]:
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    return {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT / "plugins" / plugin), method_map, options_map, keywords=dict(DEFAULT_KEYWORDS)
        )
    }


def test_plugins_with_catalogues_are_found():
    assert "intake" in PLUGINS


@pytest.mark.parametrize("plugin", PLUGINS)
def test_every_string_of_the_plugin_is_translated(plugin):
    translated = {m.id for m in catalogue(plugin) if m.id and m.string and not m.fuzzy}
    assert sorted(source_messages(plugin) - translated) == []


@pytest.mark.parametrize("plugin", PLUGINS)
def test_the_catalogue_has_no_broken_placeholders(plugin):
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalogue(plugin).check()]
    assert problems == []


@pytest.mark.parametrize("plugin", PLUGINS)
def test_translations_have_no_stray_percent_signs(plugin):
    """Templates format every translation with ``%``: a lone ``%`` in Chinese breaks the page."""
    stray = re.compile(r"%(?![(%])")
    bad = [
        (m.id, m.string)
        for m in catalogue(plugin)
        if isinstance(m.id, str) and m.string and stray.search(m.string.replace("%%", "")) and "%" not in m.id
    ]
    assert bad == []

"""``ordo plugins new NAME``: generate a plugin package that passes the plugin contract as generated.

The package is a distribution of its own (``ordo-NAME``) with the ``ordo.plugins``
entry point, a manifest and hooks, a model with its Alembic branch, a screen (blueprint
and template) and a test inheriting :class:`core.contract.PluginContract`. Templates
live in ``template/``; ``@@name@@`` tokens in file contents and upper-case tokens in
paths are replaced, and nothing else is touched (the screen's own Jinja stays as is).
"""

from __future__ import annotations

import datetime as dt
import keyword
import re
import uuid
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "template"
SUFFIX = ".tmpl"
#: A plugin name: the entry point, branch label, table prefix and URL prefix all use it.
NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
#: Names already taken by Ordo itself: its packages and screens, the built-in plugins,
#: and core's table names (a plugin's tables are named ``<plugin>_…``, so a plugin
#: called ``order`` would clash with ``order_line``).
RESERVED = frozenset(
    {"core", "plugins", "ordo", "api", "static", "admin", "auth", "orders", "documents", "customers", "products"}
    | {"intake", "review", "logistics", "billing", "kpi"}
    | {"order", "user", "role", "customer", "product", "company", "branch", "department", "audit", "api_token"}
    | {"number", "idempotency", "plugin", "step", "setting", "registry", "alembic"}
)


def check_name(name: str) -> None:
    """Refuse a name that cannot serve as entry point, package suffix, table prefix and URL part."""
    if not NAME.match(name) or name.endswith("_") or "__" in name:
        raise ValueError(
            f"plugin name {name!r} must be 2 to 31 lowercase letters, digits or single underscores, "
            "starting with a letter"
        )
    if keyword.iskeyword(name) or name in RESERVED:
        raise ValueError(f"plugin name {name!r} is reserved; choose another")
    from core.plugins import discover

    if name in discover():
        raise ValueError(f"a plugin called {name!r} is installed already; choose another")


def _words(name: str) -> dict[str, str]:
    parts = name.split("_")
    today = dt.date.today()
    return {
        "plugin": name,
        "Title": " ".join(parts).capitalize(),
        "Class": "".join(p.capitalize() for p in parts),
        # A random revision id, as Alembic makes them: unique across every plugin's branch.
        "revision": uuid.uuid4().hex[:12],
        "date": today.isoformat(),
        "file_date": today.strftime("%Y_%m_%d"),
    }


def create_plugin(name: str, dest: Path) -> Path:
    """Write a new plugin package ``ordo-<name>/`` under ``dest`` and return its folder.

    Raises :class:`ValueError` for an unusable name and :class:`FileExistsError` if the
    folder exists, so nothing a developer wrote is ever overwritten.
    """
    check_name(name)
    words = _words(name)
    target = Path(dest) / f"ordo-{name}"
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    files: dict[Path, str] = {}
    for source in sorted(TEMPLATE.rglob(f"*{SUFFIX}")):
        relative = source.relative_to(TEMPLATE).as_posix().removesuffix(SUFFIX)
        relative = (
            relative.replace("DATE", words["file_date"]).replace("REVISION", words["revision"]).replace("PLUGIN", name)
        )
        text = source.read_text(encoding="utf-8")
        for token, value in words.items():
            text = text.replace(f"@@{token}@@", value)
        leftover = re.search(r"@@\w+@@", text)
        if leftover:
            raise RuntimeError(f"template {source.name} uses unknown token {leftover.group(0)}")
        files[target / relative] = text
    # Written only once every template has rendered, so a broken template leaves no half package.
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target

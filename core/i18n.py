"""Languages: Chinese (zh_CN) and English, chosen per user; catalogues compiled on demand.

Translations live in ``core/translations`` and in each plugin's ``translations``
folder (gettext ``.po``). Missing or stale ``.mo`` files are compiled at start-up, so
a fresh checkout needs no build step.
"""

from __future__ import annotations

import os
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import request, session
from flask_babel import Babel

from core.web import actor

LANGUAGES = ("zh_CN", "en")
CORE_TRANSLATIONS = Path(__file__).resolve().parent / "translations"


_compiled: set[tuple[Path, float]] = set()


def compile_catalogues(folder: Path) -> None:
    """Compile every ``.po`` under ``folder`` whose ``.mo`` is missing or older.

    Checked once per process and catalogue version, so printing a document does not
    touch the file system each time.
    """
    for po in folder.glob("*/LC_MESSAGES/*.po"):
        stamp = (po, po.stat().st_mtime)
        if stamp in _compiled:
            continue
        _compiled.add(stamp)
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source)
        # Written aside and renamed, so processes starting together never read half a file.
        partial = mo.with_name(f"{mo.name}.{os.getpid()}.tmp")
        with partial.open("wb") as target:
            write_mo(target, catalog)
        os.replace(partial, mo)


def select_locale() -> str:
    """The user's language, else the one chosen on the login page, else the browser's."""
    user = actor()
    if user is not None and user.language in LANGUAGES:
        return user.language
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return (
        request.accept_languages.best_match(["zh_CN", "zh", "en"], default="zh_CN")
        .replace("zh", "zh_CN")
        .replace("zh_CN_CN", "zh_CN")
    )


def init_babel(app: object, folders: list[Path]) -> Babel:
    """Set up Flask-Babel on ``app`` with core's and the plugins' catalogues."""
    for folder in folders:
        compile_catalogues(folder)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(str(f) for f in folders)  # type: ignore[attr-defined]
    return Babel(app, locale_selector=select_locale)

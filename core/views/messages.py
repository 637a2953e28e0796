"""Messages from services, schemas and guards, in the user's language.

Services, marshmallow schemas and workflow guards speak English (the API's language,
and what the logs keep). Screens show people the same message in their language:
fixed messages are looked up in the catalogue as they are, messages carrying a value
("Unknown product 'X'.") are matched by pattern and re-worded with the value kept. A
message no pattern knows (a plugin's own) is shown as given; plugins translate theirs
in their own catalogues.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext

from core.views.labels import N_, permission_label, step_label

# Fixed messages: looked up in the catalogue verbatim.
FIXED_MESSAGES = (
    N_("Not a valid number."),
    N_("Not a valid integer."),
    N_("Not a valid date."),
    N_("Not a valid string."),
    N_("Not a valid boolean."),
    N_("Not a valid email address."),
    N_("Not a valid list."),
    N_("Unknown field."),
    N_("Special numeric values (nan or infinity) are not permitted."),
    N_("Give a code (string) or an id (integer)."),
    N_("Quantity must be greater than zero."),
    N_("Unit price cannot be negative."),
    N_("Discount is a percentage from 0 to 100."),
    N_("Use a three-letter ISO currency code."),
    N_("Use 1–32 letters, digits, '.', '_' or '-'."),
    N_("Use 1–64 letters, digits, '.', '/', '_' or '-'."),
    N_("List price cannot be negative."),
    N_("Tax rate is a percentage from 0 to 100."),
    N_("An order needs at least one line."),
    N_("the order has no lines"),
)


def _length(match: re.Match[str]) -> str:
    low, high = match.group(1), match.group(2)
    if low == "1":
        return gettext("Required; at most %(max)s characters.", max=high)
    return gettext("Between %(min)s and %(max)s characters.", min=low, max=high)


#: (pattern, how to word it) for messages carrying a value. Keep in step with the
#: wording in core/services, core/schemas, core/builtin.py and core/installation.py.
PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(r"^(Missing data for required field|Field may not be null)\.$"),
        lambda m: gettext("This field is required."),
    ),
    (
        re.compile(r"^Too large: at most (\d+) digits before the decimal point\.$"),
        lambda m: gettext("Too large: at most %(digits)s digits before the decimal point.", digits=m[1]),
    ),
    (
        re.compile(r"^Too precise: at most (\d+) decimal places\.$"),
        lambda m: gettext("Too precise: at most %(places)s decimal places.", places=m[1]),
    ),
    (re.compile(r"^Must be one of: .*\.$"), lambda m: gettext("Choose one of the offered values.")),
    (re.compile(r"^Longer than maximum length (\d+)\.$"), lambda m: gettext("At most %(max)s characters.", max=m[1])),
    (re.compile(r"^Shorter than minimum length (\d+)\.$"), lambda m: gettext("At least %(min)s characters.", min=m[1])),
    (re.compile(r"^Length must be between (\d+) and (\d+)\.$"), _length),
    (re.compile(r"^Unknown customer '?(.*?)'?\.$"), lambda m: gettext("Unknown customer %(ref)s.", ref=m[1])),
    (
        re.compile(r"^Customer (.+) is deactivated\.$"),
        lambda m: gettext("Customer %(code)s is deactivated.", code=m[1]),
    ),
    (re.compile(r"^Unknown product '?(.*?)'?\.$"), lambda m: gettext("Unknown product %(ref)s.", ref=m[1])),
    (re.compile(r"^Product (.+) is deactivated\.$"), lambda m: gettext("Product %(sku)s is deactivated.", sku=m[1])),
    (
        re.compile(r"^Customer code '(.*)' is taken\.$"),
        lambda m: gettext("Customer code %(code)s is already taken.", code=m[1]),
    ),
    (re.compile(r"^SKU '(.*)' is taken\.$"), lambda m: gettext("SKU %(sku)s is already taken.", sku=m[1])),
    (re.compile(r"^Unknown branch '(.*)'\.$"), lambda m: gettext("Unknown branch %(code)s.", code=m[1])),
    (
        re.compile(r"^customer (.+) is deactivated$"),
        lambda m: gettext("Customer %(code)s is deactivated.", code=m[1]),
    ),
    (
        re.compile(r"^line (\d+): product (.+) is deactivated$"),
        lambda m: gettext("Line %(line)s: product %(sku)s is deactivated.", line=m[1], sku=m[2]),
    ),
    (
        re.compile(r"^line (\d+): quantity must be greater than zero$"),
        lambda m: gettext("Line %(line)s: the quantity must be greater than zero.", line=m[1]),
    ),
    (
        re.compile(r"^you lack the permission '(.+)'$"),
        lambda m: gettext("You lack the permission “%(permission)s”.", permission=permission_label(m[1])),
    ),
    (
        re.compile(r"^orders wait in step '(.+?)': (.+); move them on first$"),
        lambda m: gettext(
            "Orders wait in step “%(step)s”: %(orders)s. Move them on first.", step=step_label(m[1]), orders=m[2]
        ),
    ),
    (
        re.compile(r"^(\d+) order\(s\) wait in steps of (.+?): (.+)\. Move them on first"),
        lambda m: gettext(
            "%(count)s order(s) wait in steps of %(plugins)s: %(orders)s. Tick “Move waiting orders on” "
            "to move them to the next step, or let them leave those steps first.",
            count=m[1],
            plugins=m[2],
            orders=m[3],
        ),
    ),
    (
        re.compile(r"^plugin '(.+)' requires (.+); disable '(.+)' first$"),
        lambda m: gettext("Plugin %(other)s requires %(names)s; disable %(other)s first.", other=m[1], names=m[2]),
    ),
    (
        re.compile(r"^plugin '(.+)' requires '(.+)', which is not installed$"),
        lambda m: gettext("Plugin %(name)s requires %(other)s, which is not installed.", name=m[1], other=m[2]),
    ),
    (
        re.compile(r"^plugin '(.+)' is not installed$"),
        lambda m: gettext("Plugin %(name)s is not installed.", name=m[1]),
    ),
    (
        re.compile(r"^step '(.+)' cannot be switched off$"),
        lambda m: gettext("Step “%(step)s” cannot be switched off.", step=step_label(m[1])),
    ),
)


def localize(message: str) -> str:
    """``message`` in the user's language when core knows it, else as given."""
    message = str(message)
    for pattern, word in PATTERNS:
        match = pattern.match(message)
        if match:
            return word(match)
    return gettext(message)

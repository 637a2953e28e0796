"""Field-level permissions: sensitive figures (cost, margin, credit) only for those allowed.

A marshmallow field marked ``metadata={"permission": "<code>"}`` is left out of what a
schema dumps for a user without that permission. Two ways to use it:

- derive output schemas from :class:`PermissionSchema`: whatever dumps them (an API
  endpoint's ``@blp.response``, a service) leaves the marked fields out for the
  request's user, or for the ``user`` the schema was built with;
- or call :func:`dump_for` with any schema, the object and the user.

Screens and documents ask :func:`can_see` (the Jinja global ``can_see(code)``) before
showing such a figure. Outside a request, without a user, nothing sensitive is shown.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import has_request_context
from marshmallow import Schema, fields, post_dump

from core.models import User

#: The metadata key naming the permission a field needs.
PERMISSION_KEY = "permission"


def field_permission(field: fields.Field) -> str | None:
    """The permission ``field`` needs to be seen (None: everyone who sees the record)."""
    code = field.metadata.get(PERMISSION_KEY)
    return str(code) if code else None


def _request_user() -> User | None:
    if not has_request_context():
        return None
    from core.web import actor

    return actor()


def can_see(code: str | None, user: User | None = None) -> bool:
    """Whether ``user`` (default: the request's user) may see a figure needing ``code``."""
    if not code:
        return True
    user = user if user is not None else _request_user()
    return user is not None and user.active and user.can(code)


def _nested_schema(field: fields.Field) -> Schema | None:
    inner = field.inner if isinstance(field, fields.List) else field
    if isinstance(inner, fields.Nested):
        schema = inner.schema
        return schema if isinstance(schema, Schema) else None
    return None


def hidden_fields(schema: Schema, user: User | None, prefix: str = "") -> set[str]:
    """The (dotted, for nested schemas) names of ``schema``'s fields ``user`` may not see."""
    hidden: set[str] = set()
    for name, field in schema.fields.items():
        if not can_see(field_permission(field), user):
            hidden.add(prefix + name)
            continue
        nested = _nested_schema(field)
        if nested is not None:
            hidden |= hidden_fields(nested, user, f"{prefix}{name}.")
    return hidden


def _strip(data: Any, schema: Schema, user: User | None) -> None:
    """Remove from dumped ``data`` (a dict or a list of dicts) the keys ``user`` may not see."""
    if isinstance(data, list):
        for item in data:
            _strip(item, schema, user)
        return
    if not isinstance(data, dict):
        return
    for name, field in schema.dump_fields.items():
        key = field.data_key or name
        if key not in data:
            continue
        if not can_see(field_permission(field), user):
            del data[key]
            continue
        nested = _nested_schema(field)
        if nested is not None:
            _strip(data[key], nested, user)


def dump_for(schema: Schema, obj: Any, user: User | None, *, many: bool | None = None) -> Any:
    """``schema.dump(obj)`` without the fields ``user`` may not see (nested ones too)."""
    many = schema.many if many is None else many
    if isinstance(schema, PermissionSchema):
        schema = copy.copy(schema)  # reads for ``user``, not for whoever the request belongs to
        schema.user = user
    data = schema.dump(obj, many=many)
    if many:
        _strip(list(data), schema, user)
    else:
        _strip(data, schema, user)
    return data


class PermissionSchema(Schema):
    """A schema that leaves out the fields its reader may not see, in nested schemas too.

    The reader is the ``user`` given to the constructor, else the request's user.
    """

    def __init__(self, *args: Any, user: User | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    @post_dump
    def _leave_out_hidden(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        _strip(data, self, self.user if self.user is not None else _request_user())
        return data


def hides_person(viewer: User | None, person: User | None) -> bool:
    """Whether ``viewer`` must not see who ``person`` is: a customer's portal user sees the
    names of its own company's users, never the supplier's staff (a name, an id)."""
    if viewer is None or viewer.customer_id is None or person is None:
        return False
    return person.customer_id != viewer.customer_id

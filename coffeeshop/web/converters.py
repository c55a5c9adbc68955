"""Path converters for the routes of both apps: `<any_uuid:name>`, a UUID in either case.

Django's `<uuid:...>` matches lowercase hex only, so an id a client uppercased (as some
languages print UUIDs) was a 404 in a path yet found by `batchGet`. Importing this module
registers the converter; each URL conf that uses it imports it.
"""

import uuid

from django.urls import register_converter

ANY_UUID = "any_uuid"


class AnyCaseUUIDConverter:
    """A UUID in its hyphenated form, upper, lower or mixed case; the view gets a `uuid.UUID`."""

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value: uuid.UUID | str) -> str:
        return str(value).lower()


register_converter(AnyCaseUUIDConverter, ANY_UUID)

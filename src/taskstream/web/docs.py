"""The API's documentation pages, served without any CDN: Swagger UI's script, style and icon
come from the ``swagger-ui-bundle-v2`` wheel (byte-identical to ``swagger-ui-dist`` of the same
version) through ``/docs-assets``, so ``/schema`` works offline and behind strict egress.

Only Swagger UI is offered (at ``/schema`` and ``/schema/swagger``), with the raw documents at
``/schema/openapi.json`` and ``/schema/openapi.yaml``: Litestar's other pages (Redoc, RapiDoc,
Stoplight Elements) would need their bundles vendored too and add nothing Swagger UI lacks.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from litestar import Controller, Response, get

# Litestar's own schema for msgspec structs; it ignores struct-level metadata (a Meta on the
# struct itself), so examples are added by extending it. Private path: a Litestar upgrade that
# moves it fails tests/unit/test_openapi_examples.py at import, loudly.
from litestar._openapi.schema_generation.plugins import StructSchemaPlugin
from litestar.openapi.plugins import (
    JsonRenderPlugin,
    OpenAPIRenderPlugin,
    SwaggerRenderPlugin,
    YamlRenderPlugin,
)
from litestar.params import FromPath
from swagger_ui_bundle import swagger_ui_path

from taskstream.errors import NotFoundError
from taskstream.fields import example_of

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition

ASSETS_PATH: Final = "/docs-assets"
ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
_BUNDLE = Path(str(swagger_ui_path))


def docs_render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI on same-origin assets, plus the JSON and YAML documents."""
    return [
        SwaggerRenderPlugin(
            path=["/", "/swagger"],
            js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            css_url=f"{ASSETS_PATH}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
        ),
        JsonRenderPlugin(),
        YamlRenderPlugin(path=["/openapi.yaml", "/openapi.yml"]),
    ]


class _JsonNull(Enum):
    """``null`` inside an example. Litestar's document writer drops every None from a dict
    (for its spec objects None means "not set"), which would erase an example's nulls and
    make it invalid where a nullable field is required; an enum member survives and is
    written as its value."""

    NULL = None


def _keep_nulls(value: Any) -> Any:
    if value is None:
        return _JsonNull.NULL
    if isinstance(value, dict):
        return {k: _keep_nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keep_nulls(v) for v in value]
    return value


class StructExamplesPlugin(StructSchemaPlugin):
    """Struct schemas as Litestar builds them, plus the example declared with
    ``fields.example``: one example per struct, shown by every operation using it."""

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        if (value := example_of(field_definition.type_)) is not None:
            schema.examples = [_keep_nulls(value)]
        return schema


class DocsAssetsController(Controller):
    path = ASSETS_PATH
    include_in_schema = False

    @get(
        "/{name:str}",
        exclude_from_auth=True,
        opt={"rate_limit": None},  # static files for the docs page, like /schema itself
    )
    async def asset(self, name: FromPath[str]) -> Response[bytes]:
        """A file of the Swagger UI bundle."""
        if name not in ASSETS:
            raise NotFoundError("No such asset")
        return Response(
            (_BUNDLE / name).read_bytes(),
            media_type=ASSETS[name],
            headers={"Cache-Control": "public, max-age=3600"},
        )

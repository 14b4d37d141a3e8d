"""Saved screens over HTTP: list, read, save (PUT), delete, and what an expression may use.

    GET    /v1/screens            every screen's latest version, presets included (preset: true)
    GET    /v1/screens/{name}     one screen: definition, version, every version (?version=N)
    PUT    /v1/screens/{name}     body = the definition (scan fields); answers the version
    DELETE /v1/screens/{name}     404 unknown, 409 for a preset
    GET    /v1/screen/columns     columns with kinds, operators, functions with one-line docs
A scan runs a screen with `POST /v1/scan {"screen": NAME, ...}` (scan.py). The backend's
ScreenStore (technic_v4/screens/saved.py) does the work, in a thread (SQLite calls block);
its errors map through `errors.answer`: a bad name or definition is a 422 (a bad `where` with
its line and column), an unknown screen 404, a change to a preset 409. A definition is
scanned once before it is saved (screens/trial.py): one that cannot be evaluated is a 422
naming `definition`, and nothing is saved.
Each route sees the store through the caller's scope (technic_v4/tenancy.py): with API keys,
a key's screens are its own, another key's are a 404 like any unknown name; an admin key's
listing shows every key's screens with their `owner`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from deployments.api.dependencies import APIKey, Backend, Tenancy
from deployments.api.errors import InputError
from deployments.api.responses import JSONBody
from deployments.api.schemas import (
    ScreenColumns,
    ScreenDefinition,
    ScreenDeleted,
    ScreenInfo,
    ScreenList,
    ScreenSaved,
    ValidationErrorResponse,
)
from technic_v4.errors import ConfigError
from technic_v4.scan.config import SCREEN_NAME, check_screen_name
from technic_v4.scan.expressions import column_catalogue
from technic_v4.screens import OPERATORS, describe
from technic_v4.screens.saved import definition_of
from technic_v4.screens.trial import evaluated_once

router = APIRouter(prefix="/v1", tags=["screens"], dependencies=[APIKey])
AUTH = {401: {"description": "X-API-Key missing or wrong (when keys are configured)"}}
OWNED = {**AUTH,
         403: {"description": "`owner` given by a key that is not an admin key"},
         409: {"model": ValidationErrorResponse, "description": "An admin key named what "
               "several keys have: `valid` lists their owners; add `owner`"}}
INVALID = {422: {"model": ValidationErrorResponse,
                 "description": "Invalid name or definition; a bad `where` / `rank` gives its "
                                "line and column"}}
UNKNOWN = {404: {"model": ValidationErrorResponse, "description": "No screen of this name "
                 "(or no such version); `valid` lists what there is"}}
PRESET = {409: {"model": ValidationErrorResponse,
                "description": "A preset is read-only: save under another name"}}
ScreenPath = Annotated[str, Path(description="A screen name: 1-64 characters of a-z, 0-9, "
                                 "'-' and '_', starting with a letter or digit.",
                                 json_schema_extra={"pattern": SCREEN_NAME.pattern})]


def _name(name: str) -> str:
    """The path's name checked by the library (422 naming the rule)."""
    try:
        return check_screen_name(name)
    except ConfigError as exc:
        raise InputError("name", str(exc), location="path") from None


@router.get("/screens", response_model=ScreenList, responses=OWNED)
async def list_screens(backend: Backend, scope: Tenancy) -> JSONBody:
    """Every screen's latest version: the presets, then your saved screens by name."""
    screens = await asyncio.to_thread(backend.screens.scoped(scope).list)
    return JSONBody({"count": len(screens), "screens": [
        {**s.to_dict(), "owner": s.owner} if scope.admin and s.owner else s.to_dict()
        for s in screens]})


@router.get("/screens/{name}", response_model=ScreenInfo, responses={
    **OWNED, **UNKNOWN, **INVALID})
async def get_screen(name: ScreenPath, backend: Backend, scope: Tenancy, version: Annotated[
        int | None, Query(ge=1, le=2**62, description="This version (default: the latest).")
        ] = None) -> JSONBody:
    """A screen's definition and version (the latest unless `version`), and its versions."""
    name = _name(name)
    store = backend.screens.scoped(scope)

    def read() -> dict:
        screen = store.get(name, version)
        return {**screen.to_dict(), "versions": [
            {"version": v.version, "created": v.created} for v in store.versions(name)]}

    return JSONBody(await asyncio.to_thread(read))


@router.put("/screens/{name}", response_model=ScreenSaved, responses={
    **OWNED, **PRESET, **INVALID})
async def put_screen(name: ScreenPath, body: ScreenDefinition, backend: Backend,
                     scope: Tenancy) -> JSONBody:
    """Save the definition as the screen's next version (an identical one changes nothing)."""
    name = _name(name)
    cfg = body.to_config()
    await asyncio.to_thread(backend.check_cost, cfg)
    with evaluated_once("definition"):
        await backend.scan(cfg, scope=scope)
    version, changed = await asyncio.to_thread(backend.screens.scoped(scope).put, name, cfg)
    return JSONBody({"name": name, "version": version, "changed": changed,
                     "definition": definition_of(cfg)})


@router.delete("/screens/{name}", response_model=ScreenDeleted, responses={
    **OWNED, **UNKNOWN, **PRESET, **INVALID})
async def delete_screen(name: ScreenPath, backend: Backend, scope: Tenancy) -> JSONBody:
    """Delete every version of a saved screen (presets cannot be deleted)."""
    name = _name(name)
    await asyncio.to_thread(backend.screens.scoped(scope).delete, name)
    return JSONBody({"name": name, "deleted": True})


@router.api_route("/screens/{name}", methods=["POST", "PATCH", "OPTIONS", "TRACE"],
                  include_in_schema=False)
async def other_methods(name: str) -> None:
    """405 naming every method of the path (Starlette would name only the first route's)."""
    raise HTTPException(405, "Method Not Allowed", headers={"Allow": "GET, PUT, DELETE"})


@router.get("/screen/columns", response_model=ScreenColumns, responses=AUTH)
async def screen_columns() -> JSONBody:
    """What `where` and `rank` may use: columns with their kinds, operators and functions."""
    return JSONBody({"columns": column_catalogue(),
                     "operators": [{"syntax": s, "doc": d} for s, d in OPERATORS],
                     "functions": describe()})


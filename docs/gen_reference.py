"""The reference pages, generated from the code at every `mkdocs build` (a MkDocs hook).

- `reference/configuration.md` from `technic_v4.settings.Settings`: each field's environment
  variable, type and default, and its meaning from the table in the settings module's
  docstring (the one place each variable is described);
- `reference/cli.md` from the typer app `technic_v4.cli:app`, walked through click: every
  command's help, usage and options;
- `reference/http.md` from the FastAPI app's OpenAPI schema (`create_app(...).openapi()`):
  every route with its parameters, body and answers, then the schemas.

The pages exist only in the built site (`on_files` adds them), so they cannot go stale in the
repository; tests/docs/test_reference.py checks that they name every setting and route.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # mkdocs loads this file by path, from any folder
    sys.path.insert(0, str(ROOT))

PAGES = ("reference/configuration.md", "reference/cli.md", "reference/http.md")


# -- configuration ----------------------------------------------------------------------------
def env_name(name: str) -> str:
    """The environment variable a Settings field reads (its alias, else TECHNIC_<NAME>)."""
    from technic_v4.settings import Settings

    choices = getattr(Settings.model_fields[name].validation_alias, "choices", None)
    return str(choices[0]) if choices else f"TECHNIC_{name.upper()}"


def setting_rows() -> dict[str, tuple[str, str]]:
    """(default as documented, meaning) by variable, from the settings module's table."""
    import technic_v4.settings as module

    rows = re.findall(r"^\| ([A-Z0-9_]+) \| (.*?) \| (.*) \|$", module.__doc__ or "", re.M)
    return {name: (default, meaning) for name, default, meaning in rows}


def configuration_page() -> str:
    from technic_v4.settings import Settings

    documented = setting_rows()
    missing = [env_name(n) for n in Settings.model_fields if env_name(n) not in documented]
    if missing:
        raise ValueError("technic_v4/settings.py: no row in the module docstring's table for "
                         + ", ".join(missing))
    out = ["# Configuration reference", "",
           "Every environment variable technic reads, generated from "
           "`technic_v4.settings.Settings` (pydantic-settings). They are read once where a "
           "process starts (the `technic` CLI, `create_app`, `build_app`) and passed down; a "
           "malformed value stops the process at start with the variable's name. Constraints "
           "are checked when the value is read.", "",
           "| variable | field | type | default | meaning |", "|---|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        shown_default, meaning = documented[env_name(name)]
        value = field.default
        default = shown_default if value in (None, "") else f"`{value!r}`"
        kind = re.sub(r"\b(typing|builtins)\.", "", str(field.annotation)).replace("|", "or")
        limits = [f"{k} {getattr(m, k)}" for m in field.metadata
                  for k in ("ge", "gt", "le", "lt") if getattr(m, k, None) is not None]
        kind = kind.replace("<class '", "").replace("'>", "")
        if limits:
            kind += " (" + ", ".join(s.replace("ge", "≥").replace("gt", ">")
                                     .replace("le", "≤").replace("lt", "<") for s in limits) + ")"
        out.append(f"| `{env_name(name)}` | `{name}` | {kind} | {default} | {meaning} |")
    rest = _after_table(sys.modules[Settings.__module__].__doc__ or "")
    return "\n".join(out + ["", rest]) + "\n"


def _after_table(doc: str) -> str:
    """The module docstring's prose after its table (notes on some variables)."""
    parts = re.split(r"\n(?:\|[^\n]*\n)+", doc, maxsplit=1)
    return parts[1].strip() if len(parts) == 2 else ""


# -- CLI ----------------------------------------------------------------------------------------
def cli_page() -> str:
    import click
    import typer.main

    from technic_v4.cli import app

    root = typer.main.get_command(app)
    out = ["# CLI reference", "",
           "Every `technic` command, generated from the typer app (`technic_v4.cli:app`); "
           "`technic COMMAND --help` prints the same. Exit status: `0` done, `1` a check "
           "found something (data check, watch status/test), `2` an error (one `error:` "
           "line), `3` `technic scan --symbol` named a symbol not in the universe."]
    _cli_command(root, click.Context(root, info_name="technic"), 2, out)
    return "\n".join(out) + "\n"


def _cli_command(cmd: Any, ctx: Any, depth: int, out: list[str]) -> None:
    """One command's heading, help, usage and options, then its subcommands'."""
    import click

    if depth > 2:
        out += ["", "#" * depth + " " + f"`{ctx.command_path}`"]
        if cmd.help:
            out += ["", _plain(cmd.help)]
    out += ["", f"Usage: `{cmd.get_usage(ctx).removeprefix('Usage: ')}`"]
    arguments = [p for p in cmd.get_params(ctx) if p.param_type_name == "argument"]
    options = [p.get_help_record(ctx) for p in cmd.get_params(ctx)
               if p.param_type_name == "option" and not getattr(p, "hidden", False)]
    rows = [f"| `{(p.name or '').upper()}` | {'' if p.required else '(optional) '}"
            f"{_cell(getattr(p, 'help', None) or 'argument')} |" for p in arguments]
    rows += [f"| `{names}` | {_cell(text)} |" for names, text in filter(None, options)
             if names != "--help"]
    if rows:
        out += ["", "| option | meaning |", "|---|---|", *rows]
    if hasattr(cmd, "list_commands"):  # a group (typer's lazy groups included)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                _cli_command(sub, click.Context(sub, info_name=name, parent=ctx),
                             min(depth + 1, 4), out)


def _plain(text: str) -> str:
    """Click help text as Markdown: paragraphs kept, `\\b` no-rewrap markers dropped."""
    return "\n\n".join(p.replace("\b\n", "").strip() for p in text.split("\n\n"))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# -- HTTP ---------------------------------------------------------------------------------------
def openapi() -> dict[str, Any]:
    """The OpenAPI schema of the HTTP app. The routes and their schemas do not depend on the
    backend; a ScanBackend over an empty folder stands in (nothing is read from it)."""
    from deployments.api.main import create_app
    from technic_v4.alpha.inference import ModelSet
    from technic_v4.data.reader import StoreReader
    from technic_v4.scan.executor import LocalExecutor
    from technic_v4.service.backend import ScanBackend
    from technic_v4.settings import Settings

    with tempfile.TemporaryDirectory() as folder:
        reader = StoreReader(folder)
        backend = ScanBackend(reader, LocalExecutor(reader, ModelSet(folder)), folder,
                              chunk_size=1)
        settings = Settings(api_keys="", api_key_hashes="", redis_url="")
        return create_app(backend, api_keys=(), settings=settings).openapi()


def http_page(spec: dict[str, Any] | None = None) -> str:
    spec = spec or openapi()
    out = ["# HTTP reference", "",
           f"Generated from the app's OpenAPI schema ({spec['info']['title']} "
           f"{spec['info']['version']}); a running server serves the same at `/openapi.json` "
           "and as an interactive page at `/docs`.", "", spec["info"].get("description", "")]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    out += ["", "| route | what |", "|---|---|"]
    for ops in by_tag.values():
        for method, path, op in ops:
            what = (op.get("description") or op.get("summary", "")).split("\n\n")[0]
            out.append(f"| [`{method.upper()} {path}`](#{_anchor(method, path)}) | "
                       f"{_cell(what)} |")
    for tag, ops in by_tag.items():
        out += ["", f"## {tag}"]
        for method, path, op in ops:
            out += _operation(method, path, op)
    out += ["", "## Schemas"]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        out += _schema(name, schema)
    return "\n".join(out) + "\n"


def _anchor(method: str, path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")


def _operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    out = ["", f"### `{method.upper()} {path}` {{#{_anchor(method, path)}}}"]
    if op.get("description") or op.get("summary"):
        out += ["", op.get("description") or op["summary"]]
    params = op.get("parameters", [])
    if params:
        out += ["", "| parameter | in | type | required | meaning |", "|---|---|---|---|---|"]
        for p in params:
            meaning = p.get("description") or p.get("schema", {}).get("description", "")
            out.append(f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | "
                       f"{'yes' if p.get('required') else 'no'} | {_cell(meaning)} |")
    body = op.get("requestBody", {}).get("content", {})
    if body:
        kinds = ", ".join(f"{ctype} ({_type(c.get('schema', {}))})" for ctype, c in body.items())
        out += ["", f"Body: {kinds}"]
    answers = op.get("responses", {})
    if answers:
        out += ["", "| status | meaning |", "|---|---|"]
        for code, answer in answers.items():
            out.append(f"| {code} | {_cell(answer.get('description', ''))} |")
    return out


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    out = ["", f"### {name}"]
    if schema.get("description"):
        out += ["", _cell(schema["description"])]
    props = schema.get("properties", {})
    if props:
        required = set(schema.get("required", []))
        out += ["", "| field | type | default | meaning |", "|---|---|---|---|"]
        for field, prop in props.items():
            default = f"`{json.dumps(prop['default'])}`" if "default" in prop else (
                "required" if field in required else "")
            out.append(f"| `{field}` | {_type(prop)} | {_cell(default)} | "
                       f"{_cell(prop.get('description', ''))} |")
    elif "enum" in schema:
        out += ["", "One of " + ", ".join(f"`{v}`" for v in schema["enum"]) + "."]
    return out


def _type(schema: dict[str, Any]) -> str:
    """A schema's type in a few words (`integer`, `array of string`, a linked schema name)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            kinds = [_type(s) for s in schema[key]]
            return " or ".join(k for k in dict.fromkeys(kinds) if k != "null") + \
                (" or null" if "null" in kinds else "")
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    return str(kind)


# -- the MkDocs hook ----------------------------------------------------------------------------
def pages() -> dict[str, str]:
    """The generated pages by their path under docs/."""
    return dict(zip(PAGES, (configuration_page(), cli_page(), http_page()), strict=True))


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the site's files (MkDocs ≥ 1.6 `File.generated`)."""
    from mkdocs.structure.files import File

    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files

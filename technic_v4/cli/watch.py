"""`technic watch`: alerts when a symbol enters or leaves a screen (technic_v4/watch/).

    technic watch add NAME --screen S | [scan options] [--webhook URL] [--apprise URL]
                           [--rank-moved N] [--initial]     prints the secret ONCE
    technic watch list | show NAME | remove NAME
    technic watch test NAME                 a signed test message to every target, now
    technic watch status [NAME]             deliveries by state, breakers, dead letters
    technic watch redeliver NAME [--delivery ID]
    technic watch tail [--watch NAME] [--url URL] [--json]   follow the events
    technic watch run [--once]              evaluate new sessions and deliver, until stopped
`technic data append / update / ingest` evaluate every watch on the sessions they add and
deliver once (`--no-watches` skips it); what fails is retried by `technic watch run` (or the
server's watcher). `add` takes the filter options of `technic scan` (built from its signature,
like `technic screen save`). Results go to stdout, messages to stderr; errors are one
`error:` line, exit status 2. The commands see the state file as an API without keys does
(technic_v4/tenancy.py): they add to the open namespace and see every key's watches too.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from technic_v4.cli.options import data_root, err, fail, settings
from technic_v4.data.store_fs import StoreError
from technic_v4.errors import ConfigError
from technic_v4.scan.config import options

Name = Annotated[str, typer.Argument(metavar="NAME", help="Watch name (like a screen's).")]
DataDir = Annotated[str | None, typer.Option("--data-dir", help="Data directory whose "
                                             "watches to use (default: $TECHNIC_DATA_DIR).")]



def _service(data_dir: str | None) -> Any:
    """The local watch service of the data dir (--data-dir checked, else the default)."""
    from technic_v4.watch.service import local_service

    root = data_root(data_dir)
    env = settings()
    try:
        return local_service(root, settings=env, state_dir=env.state_dir)
    except StoreError as exc:
        fail(str(exc))


def _call(data_dir: str | None, op: Callable[[Any], Any]) -> Any:
    """`await op(service)` on a fresh local service; library errors become `error:` lines."""
    svc = _service(data_dir)

    async def go() -> Any:
        try:
            return await op(svc)
        finally:
            await svc.deliverer.aclose()

    try:
        return asyncio.run(go())
    except (ConfigError, StoreError) as exc:
        fail(str(exc))


def after_store_change(root: Any) -> None:
    """What `technic data append/update/ingest` run once the store changed: every watch
    evaluated on the new sessions, then one delivery pass. Quiet without watches."""
    from technic_v4.statedb import DB_NAME
    from technic_v4.watch.service import local_service

    env = settings()
    if not (env.state_root(root) / DB_NAME).exists():
        return
    svc = local_service(root, settings=env, state_dir=env.state_dir)
    if not svc.store.list():
        return

    async def go() -> Any:
        try:
            return await svc.tick()
        finally:
            await svc.deliverer.aclose()

    with err.status("evaluating watches..."):
        result = asyncio.run(go())
    for run in result.runs:
        err.print(f"watches at {run.session}: {len(run.evaluated)} evaluated "
                  f"({len(run.baselines)} baselines), {run.events} events"
                  + "".join(f"\n  {escape(n)}: {escape(e)}" for n, e in run.errors.items()),
                  highlight=False)
    stats = svc.deliverer.stats
    pending = sum(w["deliveries"]["pending"] for w in svc.store.status()["watches"])
    err.print(f"deliveries: {stats['delivered']} delivered, {stats['failed']} failed "
              f"(retried by `technic watch run` or the server), {stats['dead']} dead; "
              f"{pending} pending", highlight=False)


def watch_app(scan: Callable[..., None]) -> typer.Typer:
    """The `technic watch` commands; `add` takes `scan`'s screen options."""
    app = typer.Typer(help="Watches: be told when a symbol enters or leaves a screen "
                      "(signed webhooks, apprise chat/e-mail, a stream).", no_args_is_help=True)
    params = inspect.signature(scan).parameters
    fields = [p for name, p in params.items() if name in options() and name != "as_of_date"]

    def add(name: str, webhook: list[str] | None = None, apprise: list[str] | None = None,
            screen_version: int | None = None, rank_moved: int | None = None,
            initial: bool = False, regime_changed: bool = False,
            data_dir: str | None = None, **kw: Any) -> None:
        """Watch a saved screen or preset (--screen) or a definition given by the scan
        options; the baseline is evaluated now. The webhook secret is printed once."""
        from technic_v4.scan import ScanConfig
        from technic_v4.screens.saved import definition_of
        from technic_v4.watch.model import WatchSpec

        screen = kw.pop("screen")
        fields: dict[str, Any] = {k: (v or None) if isinstance(v, list) else v
                                  for k, v in kw.items()}
        cfg = ScanConfig(**fields)
        try:
            definition = definition_of(cfg)
        except ConfigError as exc:
            fail(str(exc))
        if screen and definition:
            fail("give --screen or scan options (e.g. --where), not both: save the options "
                  "as a screen first (`technic screen save`)")
        if not screen and not definition:
            fail("a watch needs --screen NAME or scan options (e.g. --where \"RSI < 30\")")
        spec = WatchSpec(name, screen=screen, screen_version=screen_version,
                         definition=definition or None, webhooks=webhook or [],
                         apprise=apprise or [], rank_moved=rank_moved, initial=initial,
                         regime_changed=regime_changed)
        with err.status("evaluating the baseline..."):
            made = _call(data_dir, lambda svc: svc.create(spec))
        print(json.dumps(made, indent=2))
        base = made.get("baseline") or {}
        err.print(f"watch {name} added; baseline at {base.get('session')}. The webhook "
                  "secret (whsec_...) above is shown only now: keep it to verify "
                  "signatures.", highlight=False)

    extra = {
        "webhook": (list[str] | None, None, typer.Option(
            "--webhook", help="Webhook URL (http/https; signed per Standard Webhooks). "
            "Repeatable.")),
        "apprise": (list[str] | None, None, typer.Option(
            "--apprise", help="Apprise URL (tgram://, slack://, discord://, mailto://, ...): "
            "one summary per session. Repeatable.")),
        "screen_version": (int | None, None, typer.Option(
            help="Pin the saved screen's version (default: follow its latest).")),
        "rank_moved": (int | None, None, typer.Option(
            help="Also tell when a kept symbol's rank moves by at least this many places.")),
        "initial": (bool, False, typer.Option(
            help="Announce the first evaluation's symbols as `entered` (default: a silent "
            "baseline).")),
        "regime_changed": (bool, False, typer.Option(
            help="Also tell when the market regime changes (docs/guides/regimes.md).")),
    }
    add.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Name),
        *[inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=d,
                            annotation=Annotated[t, o]) for k, (t, d, o) in extra.items()],
        *fields, params["data_dir"]])
    app.command("add")(add)

    @app.command("list")
    def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
              data_dir: DataDir = None) -> None:
        """Every watch with its screen, targets (redacted) and delivery state."""
        watches = _call(data_dir, lambda svc: svc.list())
        if as_json:
            print(json.dumps(watches, indent=2))
            return
        table = Table(header_style="bold")
        for col in ("name", "screen", "targets", "last session", "events", "pending",
                    "delivered", "dead"):
            table.add_column(col)
        for w in watches:
            state = w["state"] or {}
            last = state.get("last_evaluation") or {}
            d = state.get("deliveries", {})
            table.add_row(w["name"], escape(w["screen"] or "(inline)"),
                          escape(", ".join(t["url"] for t in w["targets"]) or "—"),
                          str(last.get("session", "—")), str(state.get("events", 0)),
                          str(d.get("pending", 0)), str(d.get("delivered", 0)),
                          str(d.get("dead", 0)))
        Console(width=max(Console().width, 140)).print(table)

    @app.command("show")
    def show(name: Name, data_dir: DataDir = None) -> None:
        """A watch's definition, targets (redacted), last evaluation and delivery state."""
        print(json.dumps(_call(data_dir, lambda svc: svc.get(name)), indent=2))

    @app.command("status")
    def status(name: Annotated[str | None, typer.Argument(
            help="One watch (default: all).")] = None, data_dir: DataDir = None) -> None:
        """Deliveries by state, each target's breaker, dead letters, failed evaluations and
        (all watches) the outbox's size; exit 1 with any dead letter or failed watch."""
        state = _call(data_dir, lambda svc: svc.status(name))
        print(json.dumps(state, indent=2))
        outbox = state.get("outbox")
        if outbox:
            err.print(f"outbox: {outbox['events']} events, {outbox['bytes']:,} bytes",
                      highlight=False)
        failed = [w for w in state["watches"] if w.get("failed")]
        for w in failed:
            err.print(f"watch {escape(w['name'])} failed at {w['failed']['session']}: "
                      f"{escape(w['failed']['reason'])}", highlight=False)
        dead = any(w["deliveries"]["dead"] for w in state["watches"])
        if dead:
            err.print("dead letters: fix the target, then `technic watch redeliver NAME`",
                      highlight=False)
        if dead or failed:
            raise typer.Exit(1)

    @app.command("remove")
    def remove(name: Name, data_dir: DataDir = None) -> None:
        """Remove a watch with its events and pending deliveries."""
        _call(data_dir, lambda svc: svc.remove(name))
        err.print(f"removed {name}", highlight=False)

    @app.command("test")
    def test(name: Name, data_dir: DataDir = None) -> None:
        """Send a signed `watch.test` message to every target now; exit 1 if any fails."""
        results = _call(data_dir, lambda svc: svc.test(name))
        print(json.dumps(results, indent=2))
        if not all(r["ok"] for r in results):
            raise typer.Exit(1)

    @app.command("redeliver")
    def redeliver(name: Name, delivery: Annotated[list[int] | None, typer.Option(
            help="Only these dead deliveries (ids from `status`). Repeatable.")] = None,
            data_dir: DataDir = None) -> None:
        """Dead deliveries pending again (fresh attempts), then one delivery pass."""
        async def op(svc: Any) -> tuple[int, dict]:
            n = await svc.redeliver(name, delivery)
            await svc.deliverer.run_until_idle()
            return n, dict(svc.deliverer.stats)

        n, stats = _call(data_dir, op)
        err.print(f"{n} deliveries pending again; now: {stats['delivered']} delivered, "
                  f"{stats['failed']} failed", highlight=False)

    @app.command("run")
    def run(once: Annotated[bool, typer.Option(help="One evaluation + delivery pass.")] = False,
            poll: Annotated[float | None, typer.Option(help="Seconds between looks at the "
                                                       "store ($TECHNIC_WATCH_POLL_S).")] = None,
            data_dir: DataDir = None) -> None:
        """The watcher without a server: evaluate new sessions, deliver and retry, forever."""
        svc = _service(data_dir)
        current = settings()
        poll_s = poll or current.watch_poll_s
        if current.update_at:  # the data update after each close (data/providers/schedule.py)
            from technic_v4.data.providers.schedule import attach_updater
            from technic_v4.watch.clock import SYSTEM

            try:
                attach_updater(svc, data_root(data_dir), current, SYSTEM)
            except ValueError as exc:
                fail(str(exc))

        async def loop() -> None:
            if once:
                result = await svc.tick()
                print(json.dumps({**result.as_dict(), "delivery": svc.deliverer.stats}))
                return
            err.print(f"watching (every {poll_s:g} s); Ctrl-C stops", highlight=False)
            await svc.run(poll_s)

        try:
            asyncio.run(loop())
        except KeyboardInterrupt:
            err.print("stopped", highlight=False)
        except (ConfigError, StoreError) as exc:
            fail(str(exc))

    @app.command("tail")
    def tail(watch: Annotated[str | None, typer.Option(help="Only this watch.")] = None,
             url: Annotated[str | None, typer.Option(help="Follow a server's GET /v1/events "
                                                     "(e.g. http://127.0.0.1:8000).")] = None,
             api_key: Annotated[str | None, typer.Option(envvar="TECHNIC_API_KEY",
                                                         help="X-API-Key for --url.")] = None,
             after: Annotated[int | None, typer.Option(help="Start after this event sequence "
                                                       "(default: only new events).")] = None,
             follow: Annotated[bool, typer.Option(help="Keep waiting for events.")] = True,
             as_json: Annotated[bool, typer.Option("--json", help="NDJSON.")] = False,
             data_dir: DataDir = None) -> None:
        """Print events as they are written: the local outbox, or a server's stream."""
        show_event = _printer(as_json)
        try:
            if url:
                _tail_http(url, api_key, watch, after, follow, show_event)
            else:
                _tail_local(_service(data_dir).store, watch, after, follow, show_event)
        except KeyboardInterrupt:
            return

    return app


def _printer(as_json: bool) -> Callable[[int, dict], None]:
    def show(seq: int, e: dict) -> None:
        if as_json:
            print(json.dumps({"seq": seq, **e}), flush=True)
            return
        row = e.get("row") or {}
        rank = {"entered": f"#{e.get('rank')}", "left": f"was #{e.get('previous_rank')}",
                "rank_moved": f"#{e.get('previous_rank')} -> #{e.get('rank')}",
                "truncated": f"{e.get('count')} more",
                "regime_changed": f"{e.get('previous_regime')} -> {e.get('regime')}",
                }.get(e.get("kind", ""), "")
        close = row.get("Close")
        print(f"{seq:>7} {e.get('session')} {e.get('watch')} {e.get('kind'):<10} "
              f"{e.get('symbol'):<8} {rank:<10} "
              + (f"close {close:,.2f}" if isinstance(close, int | float) else "no data"),
              flush=True)
    return show


def _tail_local(store: Any, watch: str | None, after: int | None, follow: bool,
                show: Callable[[int, dict], None]) -> None:
    seq = store.last_seq() if after is None else after
    while True:
        events = store.events_after(seq, 500, watch)
        for seq, event in events:
            show(seq, event)
        if not follow and len(events) < 500:
            return
        if len(events) < 500:
            time.sleep(0.5)


def _tail_http(url: str, api_key: str | None, watch: str | None, after: int | None,
               follow: bool, show: Callable[[int, dict], None]) -> None:
    """Follow GET /v1/events, reconnecting with Last-Event-ID after a dropped connection."""
    import httpx

    last = after
    params = {"follow": "true" if follow else "false", **({"watch": watch} if watch else {})}
    while True:
        headers = {"accept": "text/event-stream", **({"x-api-key": api_key} if api_key else {})}
        if last is not None:
            headers["last-event-id"] = str(last)
        try:
            with httpx.stream("GET", url.rstrip("/") + "/v1/events", params=params,
                              headers=headers, timeout=httpx.Timeout(10, read=60)) as resp:
                if resp.status_code != 200:
                    fail(f"{resp.status_code} from {url}: {resp.read().decode()[:300]}")
                for seq, event in sse_events(resp.iter_lines()):
                    last = seq
                    show(seq, event)
            if not follow:
                return
        except httpx.HTTPError as exc:
            err.print(f"stream interrupted ({type(exc).__name__}); reconnecting",
                      highlight=False)
            time.sleep(1.0)


def sse_events(lines: Any) -> Any:
    """(id, data) of each `event: watch` in a text/event-stream (other events skipped)."""
    seq, kind, data = None, "message", list[str]()
    for line in lines:
        if line == "":
            if data and kind == "watch" and seq is not None:
                yield int(seq), json.loads("\n".join(data))
            seq, kind, data = None, "message", list[str]()
        elif line.startswith("id:"):
            seq = line[3:].strip()
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())

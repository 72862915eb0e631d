"""backfill-platform: the command line (db, dev; later sandbox, demo, backfill, status, bench)."""

from __future__ import annotations

import argparse
import shlex
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence

from backfill_platform import settings
from backfill_platform.errors import ConfigurationError
from backfill_platform.instance import platform_environment

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def command(register: Callable[[argparse._SubParsersAction], None]) -> Callable:
    """Register a function that adds a sub-command to the parser."""
    _COMMANDS.append(register)
    return register


def require_free_port(port: int, flag: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise ConfigurationError(
                f"port {port} is already taken; pass another with {flag} or stop what listens there"
            ) from None


@command
def _db(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("db", help="the platform's PostgreSQL (embedded unless BACKFILL_DATABASE_URL is set)")
    actions = parser.add_subparsers(dest="action", required=True)
    url = actions.add_parser("url", help="print the database URL, starting the embedded server if needed")
    url.set_defaults(handler=_db_url)
    stop = actions.add_parser("stop", help="stop the embedded server")
    stop.set_defaults(handler=_db_stop)


def _db_url(args: argparse.Namespace) -> int:
    from backfill_platform.database import database_url, redact

    print(redact(database_url()))
    return 0


def _db_stop(args: argparse.Namespace) -> int:
    from backfill_platform.database import stop_embedded

    print("stopped" if stop_embedded() else "not running")
    return 0


@command
def _dev(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "dev", help="the Dagster UI and daemon on the platform's Postgres (the sandbox for sources without credentials)"
    )
    parser.add_argument("--port", type=int, default=3000, help="UI port (default 3000)")
    parser.add_argument("--host", default="127.0.0.1", help="UI host (default 127.0.0.1)")
    parser.set_defaults(handler=_run_dev)


def _run_dev(args: argparse.Namespace) -> int:
    """The webserver and the platform's daemon (`backfill_platform.daemon`, Dagster's with a 3 s backfill loop)
    side by side, as `dagster dev` runs them, each loading the workspace itself."""
    from backfill_platform.backfills import daemon
    from backfill_platform.endpoints import serving
    from backfill_platform.processes import die_with_parent, stop_groups
    from backfill_platform.sources import SOURCES

    require_free_port(args.port, "--port")
    env = platform_environment()
    with serving(SOURCES, environ=env) as (extra, endpoints):
        env.update(extra)
        for endpoint in endpoints:
            print(endpoint.describe())
        workspace = str(settings.project_root() / "workspace.yaml")
        cmd = [sys.executable, "-m", "dagster_webserver", "-w", workspace, "-p", str(args.port), "-h", args.host]
        print(
            f"Dagster UI at http://{args.host}:{args.port} (DAGSTER_HOME={env['DAGSTER_HOME']}, daemon log there in "
            "daemon.log); Ctrl-C stops it"
        )
        sys.stdout.flush()
        try:
            with daemon(env) as daemon_proc:
                # cwd = DAGSTER_HOME: no stray dagster.yaml warning, no storage/ inside the checkout
                webserver = subprocess.Popen(
                    cmd, cwd=env["DAGSTER_HOME"], env=env, start_new_session=True, preexec_fn=die_with_parent
                )
                try:
                    while webserver.poll() is None and daemon_proc.poll() is None:
                        time.sleep(0.5)
                    return webserver.returncode or daemon_proc.returncode or 1
                finally:
                    stop_groups([webserver, daemon_proc])  # both at once: Ctrl-C or SIGTERM ends dev in < 10 s
        except KeyboardInterrupt:
            return 130


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@command
def _env(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "env",
        help='exports that let `dagster` itself use the platform instance: eval "$(backfill-platform env)"',
    )
    parser.set_defaults(handler=_run_env)


def _run_env(args: argparse.Namespace) -> int:
    env = platform_environment()
    for name in ("BACKFILL_HOME", "DAGSTER_HOME"):
        print(f"export {name}={shlex.quote(env[name])}")
    return 0


@command
def _sandbox(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sandbox", help="serve local simulators of all five APIs on loopback")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument("--host", default="127.0.0.1", help="host (default 127.0.0.1)")
    parser.add_argument("--seed", type=int, default=7, help="data seed: same seed, same history (default 7)")
    parser.add_argument("--scale", type=float, default=1.0, help="volume multiplier (default 1.0)")
    parser.set_defaults(handler=_run_sandbox)


def _run_sandbox(args: argparse.Namespace) -> int:
    from backfill_platform.sandbox.core import SandboxConfig
    from backfill_platform.sandbox.env import base_urls, credentials, source_settings
    from backfill_platform.sandbox.server import serve

    if args.scale <= 0:
        raise ConfigurationError(f"--scale must be positive (got {args.scale})")
    require_free_port(args.port, "--port")
    config = SandboxConfig(seed=args.seed, scale=args.scale)
    origin = f"http://{args.host}:{args.port}"
    print(f"Sandbox APIs on {origin} (seed {args.seed}, scale {args.scale}); counters at {origin}/_sandbox/stats")
    print("Point the clients at it with:")
    for name, value in {**base_urls(origin), **credentials(config), **source_settings(config)}.items():
        print(f"  export {name}={value}")
    sys.stdout.flush()
    serve(config, args.host, args.port)
    return 0


@command
def _bench(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="benchmarks that print ratios measured in one run")
    which = parser.add_subparsers(dest="which", required=True)
    http = which.add_parser("http", help="N processes share one R/s budget against a per-second counting server")
    http.add_argument("--rate", type=int, default=50, help="R, requests per second (default 50)")
    http.add_argument("--processes", type=int, default=4, help="processes sharing the budget (default 4)")
    http.add_argument("--seconds", type=float, default=10.0, help="measured seconds (default 10)")
    http.set_defaults(handler=_run_bench_http)
    io = which.add_parser("io", help="the write path vs raw COPY and vs 500-row batched upserts")
    io.add_argument("--rows", type=int, default=1_000_000, help="rows (default 1,000,000)")
    io.set_defaults(handler=_run_bench_io)
    canton = which.add_parser("canton", help="Canton updates + events end to end against the sandbox vs raw COPY")
    canton.add_argument("--days", type=int, default=10, help="days of Scan history (default 10)")
    canton.add_argument("--scale", type=float, default=10.0, help="sandbox volume, 1 = 1,000 updates a day")
    canton.add_argument("--rows", type=int, default=0, help="sustained: this many rows, runs of ~1M at MainNet volume")
    canton.set_defaults(handler=_run_bench_canton)
    runs = which.add_parser("canton-runs", help="Canton: the same 20 days as one run vs two runs side by side")
    runs.add_argument("--days", type=int, default=20, help="days of Scan history (default 20)")
    runs.add_argument("--scale", type=float, default=10.0, help="sandbox volume, 1 = 1,000 updates a day")
    runs.set_defaults(handler=_run_bench_canton_runs)
    alpaca = which.add_parser("alpaca", help="Alpaca calls ÷ floor vs the replaced method (one call per 50 symbols)")
    alpaca.add_argument("--symbols", type=int, default=5_000, help="symbols of the 1Day run (default 5,000)")
    alpaca.add_argument("--days", type=int, default=30, help="days of the 1Day run (default 30)")
    alpaca.set_defaults(handler=_run_bench_alpaca)
    stacks = which.add_parser("stacks", help="Stacks busy wallets over a long range: calls vs floor, rate vs allowed")
    stacks.add_argument("--wallets", type=int, default=3, help="busy sandbox wallets (default 3)")
    stacks.add_argument("--days", type=int, default=180, help="days ending 2026-10-31 (default 180)")
    stacks.add_argument("--anonymous", action="store_true", help="no API key: 50 calls/min instead of 500")
    stacks.set_defaults(handler=_run_bench_stacks)
    racing = which.add_parser("racing", help="a year of Racing results + racecards at 2/s: calls vs floor, rate")
    racing.add_argument("--year", type=int, default=2024, help="the year backfilled (default 2024)")
    racing.add_argument("--chunk-days", type=int, default=60, help="days per /v1/results chunk (default 60)")
    racing.set_defaults(handler=_run_bench_racing)


def _benchmarks(name: str):  # -> the module benchmarks.<name>
    """Benchmarks live beside the package in the checkout (they drive the simulators), never in production code."""
    import importlib

    root = settings.project_root()
    if not (root / "benchmarks" / f"{name}.py").exists():
        raise ConfigurationError(f"benchmarks ship with the source checkout; run this from a clone ({root} has none)")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"benchmarks.{name}")


def _run_bench_http(args: argparse.Namespace) -> int:
    from backfill_platform.database import database_url

    print(_benchmarks("http").run(database_url(), args.rate, args.processes, args.seconds).report())
    return 0


def _run_bench_canton(args: argparse.Namespace) -> int:
    from backfill_platform.database import database_url

    if args.rows:
        print(_benchmarks("canton_sustained").run(database_url(), args.rows).report())
    else:
        print(_benchmarks("canton").run(database_url(), args.days, args.scale).report())
    return 0


def _run_bench_canton_runs(args: argparse.Namespace) -> int:
    from backfill_platform.database import database_url

    print(_benchmarks("canton_runs").run(database_url(), args.days, args.scale).report())
    return 0


def _run_bench_alpaca(args: argparse.Namespace) -> int:
    from backfill_platform.database import database_url

    print(_benchmarks("alpaca").run(database_url(), args.symbols, args.days).report())
    return 0


def _run_bench_stacks(args: argparse.Namespace) -> int:
    from backfill_platform.database import database_url

    print(_benchmarks("stacks").run(database_url(), args.wallets, args.days, keyed=not args.anonymous).report())
    return 0


def _run_bench_racing(args: argparse.Namespace) -> int:
    from backfill_platform.database import database_url

    print(_benchmarks("racing").run(database_url(), args.year, args.chunk_days).report())
    return 0


def _run_bench_io(args: argparse.Namespace) -> int:
    from backfill_platform.database import database_url

    print(_benchmarks("io").run(database_url(), args.rows).report())
    return 0


def _source_names() -> list[str]:
    from backfill_platform.sources import SOURCES

    return [s.name for s in SOURCES]


@command
def _backfill(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "backfill", help="backfill a source (or some of its assets) over a date range, as an asset backfill"
    )
    parser.add_argument(
        "target", nargs="?", help=f"a source ({', '.join(_source_names())}) or asset keys, e.g. blaze/transactions"
    )
    parser.add_argument("--from", dest="first", help="first partition, YYYY-MM-DD")
    parser.add_argument("--to", dest="last", help="last partition, YYYY-MM-DD (inclusive)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--sandbox",
        dest="sandbox",
        action="store_true",
        default=None,
        help="use the local simulators even if credentials are set",
    )
    mode.add_argument("--real", dest="sandbox", action="store_false", help="require the real API's credentials")
    parser.add_argument("--no-wait", action="store_true", help="print the backfill id and return at once")
    parser.add_argument(
        "--refetch",
        action="store_true",
        help="fetch every partition again (by default a re-run continues an earlier attempt that did not complete)",
    )
    parser.add_argument("--follow", metavar="ID", help="re-attach to a backfill and follow it to the end")
    parser.add_argument("--cancel", metavar="ID", help="cancel a backfill (its running runs are terminated)")
    parser.add_argument("--verbose", action="store_true", help="also print Dagster's own event stream")
    parser.set_defaults(handler=_run_backfill)


def _run_backfill(args: argparse.Namespace) -> int:
    from backfill_platform.follow import Follow
    from backfill_platform.runner import cancel_backfill, reattach, run_backfill

    _quiet(args.verbose)
    if args.cancel:
        cancel_backfill(args.cancel)
        print(f"backfill {args.cancel}: canceling")
        return 0
    if args.follow:
        done = [reattach(args.follow, Follow(tty=sys.stdout.isatty()))]
        ids = [args.follow]
    else:
        if not (args.target and args.first and args.last):
            raise ConfigurationError("backfill needs a source or asset keys, --from and --to (or --follow/--cancel ID)")
        result = run_backfill(
            [args.target], args.first, args.last, args.sandbox, wait=not args.no_wait, refetch=args.refetch
        )
        if args.no_wait:
            return 0
        done, ids = result, []
    return _print_reports(done, ids)


def _print_reports(done: list, ids: list[str]) -> int:
    failed = 0
    for n, state in enumerate(done):
        backfill_id = ids[n] if n < len(ids) else state.backfill_id
        print("\n".join(state.report(backfill_id)))
        failed += not state.succeeded
    return 1 if failed else 0


def _quiet(verbose: bool) -> None:
    """Dagster's DEBUG event stream stays out of the terminal unless asked for."""
    if not verbose:
        import logging

        logging.getLogger("dagster").setLevel(logging.WARNING)


@command
def _demo(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo", help="backfill the last 30 days of every source (the sandbox unless credentials are set)"
    )
    parser.add_argument("--days", type=int, default=30, help="days to backfill (default 30)")
    parser.add_argument("--verbose", action="store_true", help="also print Dagster's own event stream")
    parser.add_argument("--no-ui", action="store_true", help="exit after the backfill instead of serving the UI")
    parser.add_argument("--port", type=int, default=3000, help="UI port afterwards (default 3000)")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    """Every source's last N days through the daemon, a table of what landed, then the UI on the same instance."""
    from backfill_platform.backfills import Progress
    from backfill_platform.runner import run_backfill

    if args.days < 1:
        raise ConfigurationError(f"--days must be at least 1 (got {args.days})")
    if not args.no_ui:
        require_free_port(args.port, "--port")  # before anything is launched
    _quiet(args.verbose)
    done = [
        state for state in run_backfill(_source_names(), "", "", latest_days=args.days) if isinstance(state, Progress)
    ]
    code = 1 if any(not state.succeeded for state in done) else 0
    print("\n".join(_demo_table(done)))
    print("Re-run it: committed days are replaced atomically and nothing committed is fetched again.")
    if args.no_ui:
        return code
    print("\n".join(_automation_lines()))
    _run_dev(argparse.Namespace(port=args.port, host="127.0.0.1"))
    return code


def _demo_table(done: list) -> list[str]:
    """One row per asset (partitions, rows, API calls, 429s, seconds, rows/s), then each backfill's checks."""
    width = max((len(a) for state in done for a, *_ in state.asset_figures()), default=5)
    lines = [f"{'asset':<{width}}  partitions        rows  API calls  429s  seconds    rows/s"]
    for state in done:
        for asset, partitions, rows, calls in state.asset_figures():
            fetched = calls is not None
            rate = rows / state.seconds if state.seconds else 0.0
            lines.append(
                f"{asset:<{width}}  {partitions:>10,}  {rows:>10,}  {f'{calls:,}' if fetched else '-':>9}  "
                f"{state.http_429 if fetched else '-':>4}  {state.seconds:>7.1f}  {rate:>8,.0f}"
            )
    for state in done:
        status = "SUCCESS" if state.succeeded else state.status
        checks = ", ".join(f"{label} {outcome}" for label, outcome in state.checks.items())
        lines.append(f"backfill {state.backfill_id} {status}; checks: {checks or 'none ran'}")
        if state.failure and not state.succeeded:
            lines.append(f"  error: {state.failure}")
    return lines


def _automation_lines() -> list[str]:
    from backfill_platform.definitions import defs

    schedules = sorted(s.name for s in defs.schedules or [])
    sensors = sorted(s.name for s in defs.sensors or [])
    return [
        f"Schedules (stopped until turned on): {', '.join(schedules)}",
        f"Sensors (stopped until turned on): {', '.join(sensors)}",
        'Turn them on in the UI (Automation), or: eval "$(backfill-platform env)" && '
        "dagster schedule start blaze_daily -w workspace.yaml; BACKFILL_AUTOMATION_RUNNING=true starts them all.",
    ]


@command
def _status(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "status",
        help="per asset over a range of days: partitions materialized, missing and failed, rows, last run "
        "(exit 0 complete, 2 gaps, 1 error)",
    )
    parser.add_argument(
        "target", nargs="?", help="a source (" + ", ".join(_source_names()) + ") or an asset key (blaze/transactions)"
    )
    parser.add_argument("--from", dest="first", help="first day, YYYY-MM-DD (default: the source's first day)")
    parser.add_argument(
        "--to", dest="last", help="last day, YYYY-MM-DD, inclusive (default: the latest complete partition)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document: a list of per-asset objects")
    parser.set_defaults(handler=_run_status)


def _run_status(args: argparse.Namespace) -> int:
    import json

    import psycopg

    from backfill_platform import status
    from backfill_platform.database import database_url
    from backfill_platform.sources import load

    try:  # status answers 1 for bad input (2 means gaps remain)
        first, last = status.parse_range(args.first, args.last)
        sources = load()
        status.select(sources, args.target)  # an unknown name is reported before anything is opened
        dsn = database_url()
        with status.open_instance() as (instance, why):
            if why:
                print(f"backfill-platform: {why}", file=sys.stderr)
            statuses = status.report(dsn, sources, args.target, first, last, instance)
    except (ConfigurationError, psycopg.Error) as exc:
        print(f"backfill-platform: {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([s.to_json() for s in statuses]))
    else:
        print(status.render(statuses))
    return 0 if all(s.complete for s in statuses) else 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backfill-platform",
        description="Backfill rate-limited HTTP APIs into PostgreSQL with Dagster.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for register in _COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")  # Dagster's own API notices
    # SIGTERM (systemd, Kubernetes, `timeout`) unwinds like Ctrl-C: the daemon, sandbox and run workers a command
    # started are stopped by its `finally` blocks, and their runs end FAILURE instead of staying STARTED.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return args.handler(args)
    except ConfigurationError as exc:
        print(f"backfill-platform: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Command line: `condor-monitor run | replay | check-config | generate-session`.

Exit status: 0 done; 1 bad input or config (the message names the file and field), or IB
unreachable for ``ib-check``; 3 the replay input was cut short (everything before the cut was
processed and reported); 4 ``ib-check`` found a leg that cannot be priced from quotes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from monitor import __version__
from monitor.errors import MonitorError
from monitor.tasks import BackgroundTaskError

if TYPE_CHECKING:
    from monitor.config import DaemonConfig

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_TRUNCATED = 3
EXIT_NOT_PRICED = 4
EXIT_TASK_FAILED = 5  # a background task crashed: the run stopped after a clean shutdown


def _date(text: str) -> date:
    """An ISO date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _port(text: str) -> int:
    """A TCP port number, 0 meaning any free port."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is outside 0-65535")
    return port


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (e.g. -05:00)")
    return moment


def _duration(text: str) -> timedelta:
    from monitor.rules.loader import parse_duration  # noqa: PLC0415

    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError(f"duration {text!r} must be positive")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="condor-monitor",
        description="Risk monitor for SPX iron condors hedged with a VIX layer.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--log-stream",
        default="auto",
        choices=["auto", "stdout", "stderr"],
        help="where log lines go; auto: stdout under systemd (JOURNAL_STREAM set), else "
        "stderr. On stdout, alerts on the console are JSON log lines too",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the monitor from a config (default: the bundled demo)")
    run.add_argument("--config", type=Path, help="daemon config (TOML); default: embedded demo")
    run.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        help="override the config's metrics port (0: any free port)",
    )

    record = sub.add_parser(
        "record", help="run a live (IB) config and record its stream in the replay format"
    )
    record.add_argument("--config", type=Path, required=True, help="daemon config with an IB feed")
    record.add_argument("--out", type=Path, required=True, help="directory: one file per day")
    record.add_argument("--metrics-port", type=_port, default=None, help=argparse.SUPPRESS)

    replay = sub.add_parser("replay", help="replay a recorded session through the pipeline")
    replay.add_argument("session", type=Path, help="replay file (.jsonl or .jsonl.gz)")
    replay.add_argument("--portfolio", type=Path, required=True, help="portfolio file (TOML)")
    replay.add_argument(
        "--rules",
        type=Path,
        action="append",
        required=True,
        help="rule file or directory (repeatable)",
    )
    replay.add_argument("--alerts-out", type=Path, help="write alert transitions as JSON Lines")
    replay.add_argument(
        "--journal",
        type=Path,
        default=Path("state/journal.sqlite"),
        help="SQLite journal (default: state/journal.sqlite)",
    )
    replay.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="N x real time; 0 (default) runs as fast as the CPU allows",
    )
    replay.add_argument(
        "--rate", type=float, default=None, help="risk-free rate, decimal (default 0.04)"
    )
    replay.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        help="serve metrics on 127.0.0.1:PORT while replaying (0: any free port)",
    )
    replay.add_argument("--quiet", action="store_true", help="no alert lines on the console")

    back = sub.add_parser("backtest", help="run rules over recorded sessions: a timeline")
    back.add_argument("sessions", type=Path, nargs="+", help="replay files")
    back.add_argument(
        "--config",
        type=Path,
        help="daemon config (TOML): its pricing, scenarios, hedge, signals and events "
        "sections, portfolio and rules, as a run of it would use them",
    )
    back.add_argument(
        "--portfolio", type=Path, help="portfolio file (TOML); required without --config"
    )
    back.add_argument(
        "--rules",
        type=Path,
        action="append",
        help="rule file or directory (repeatable); required without --config",
    )
    back.add_argument(
        "--rate", type=float, default=None, help="risk-free rate, decimal (default 0.04)"
    )
    back.add_argument("--json", action="store_true", help="one JSON document on stdout")
    back.add_argument(
        "--alerts-out", type=Path, help="write alert transitions as JSON Lines, as a run does"
    )

    rules = sub.add_parser("rules", help="rule packs: check")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    rules_check = rules_sub.add_parser("check", help="validate rule files or directories")
    rules_check.add_argument("paths", type=Path, nargs="+")
    rules_explain = rules_sub.add_parser("explain", help="a rule's variables and their values")
    rules_explain.add_argument("name", help="rule name")
    rules_explain.add_argument(
        "--rules",
        type=Path,
        action="append",
        required=True,
        help="rule file or directory (repeatable)",
    )
    rules_explain.add_argument(
        "--session", type=Path, help="replay this session and show the values at its end"
    )
    rules_explain.add_argument("--portfolio", type=Path, help="portfolio, with --session")

    silence = sub.add_parser("silence", help="silences: hold back matching alerts for a while")
    silence_sub = silence.add_subparsers(dest="silence_command", required=True)
    journal_help = "the daemon's journal (default: state/journal.sqlite)"
    add = silence_sub.add_parser("add", help="add a silence")
    add.add_argument(
        "--journal", type=Path, default=Path("state/journal.sqlite"), help=journal_help
    )
    add.add_argument(
        "--match",
        action="append",
        required=True,
        metavar="LABEL=VALUE",
        help="label matcher (repeatable); alertname=RULE matches a rule",
    )
    add.add_argument("--duration", type=_duration, help="e.g. 30m, 2h (from --starts or now)")
    add.add_argument("--starts", type=_moment, help="ISO 8601 with UTC offset (default: now)")
    add.add_argument("--ends", type=_moment, help="ISO 8601 with UTC offset")
    add.add_argument("--comment", default="", help="why, for the record")
    listing = silence_sub.add_parser("list", help="list silences")
    listing.add_argument(
        "--journal", type=Path, default=Path("state/journal.sqlite"), help=journal_help
    )
    expire = silence_sub.add_parser("expire", help="end a silence now")
    expire.add_argument("id", type=int)
    expire.add_argument(
        "--journal", type=Path, default=Path("state/journal.sqlite"), help=journal_help
    )

    mqtt = sub.add_parser("mqtt", help="MQTT: sign a command for cmd/<command>")
    mqtt_sub = mqtt.add_subparsers(dest="mqtt_command", required=True)
    sign = mqtt_sub.add_parser(
        "sign",
        help='print a signed command payload (docs/delivery.md, "Signing a command")',
    )
    sign.add_argument("name", choices=["ack", "expire", "silence"], help="the command")
    sign.add_argument(
        "fields",
        nargs="?",
        default="{}",
        help="the command's JSON object, e.g. '{\"minutes\": 30}'",
    )
    sign.add_argument("--config", type=Path, help="daemon config: prefix, instance, secret")
    sign.add_argument("--secret-file", type=Path, help="the command secret (default: the config's)")
    sign.add_argument("--prefix", help="topic prefix (default: the config's, or condor)")
    sign.add_argument("--instance", help="instance name (default: the config's, or default)")

    check = sub.add_parser("check-config", help="validate a daemon config and what it references")
    check.add_argument("config", type=Path)

    ib_check = sub.add_parser(
        "ib-check",
        help="connect to IB read-only once: the account, how each position maps, the market "
        "data of every line; exit 4 when a leg cannot be priced from quotes",
    )
    ib_check.add_argument(
        "--config", type=Path, required=True, help='a config with [feed] kind = "ib"'
    )
    ib_check.add_argument(
        "--wait",
        type=float,
        default=15.0,
        help="seconds to wait for quotes (default 15; less when every leg is quoted)",
    )

    gen = sub.add_parser("generate-session", help="write the synthetic vol-spike session")
    gen.add_argument("--seed", type=int, default=20260303)
    gen.add_argument(
        "--scenario",
        choices=["vol-spike", "calm"],
        default="vol-spike",
        help="the shape of the day (default: the bundled vol-spike day)",
    )
    gen.add_argument(
        "--spx-expiry",
        type=_date,
        action="append",
        default=[],
        metavar="YYYY-MM-DD",
        help="quote this SPX (AM) expiry too, at the bundled expiry's strikes (repeatable)",
    )
    gen.add_argument("--out", type=Path, required=True)
    return parser


def _replay_config(args: argparse.Namespace) -> object:
    from monitor.config import (  # noqa: PLC0415 - keep `--help` fast
        ConsoleConfig,
        DaemonConfig,
        FeedConfig,
        JournalConfig,
        MetricsConfig,
        PricingConfig,
    )

    return DaemonConfig(
        instance="replay",
        feed=FeedConfig(session=args.session, speed=args.speed),
        portfolio=args.portfolio,
        rules=args.rules,
        pricing=PricingConfig() if args.rate is None else PricingConfig(rate=args.rate),
        journal=JournalConfig(path=args.journal),
        metrics=MetricsConfig(enabled=args.metrics_port is not None, port=args.metrics_port or 0),
        console=ConsoleConfig(enabled=not args.quiet),
        alerts_out=args.alerts_out,
    )


def _run(args: argparse.Namespace) -> int:
    from monitor import app, summary  # noqa: PLC0415
    from monitor.config import DaemonConfig, IbFeedConfig, load_config  # noqa: PLC0415

    if args.command == "replay":
        config = _replay_config(args)
        path = None
    elif args.config is not None:
        path = args.config
        config = load_config(path)
    else:
        path = None
        config = app.default_config(Path.cwd())
    assert isinstance(config, DaemonConfig)
    if args.command == "record":
        if not isinstance(config.feed, IbFeedConfig):
            raise MonitorError(f'{path}: record needs a live feed ([feed] kind = "ib")')
        feed = config.feed.model_copy(update={"record_dir": args.out})
        config = config.model_copy(update={"feed": feed})
    if args.command in {"run", "record"} and args.metrics_port is not None:
        metrics = config.metrics.model_copy(update={"port": args.metrics_port})
        config = config.model_copy(update={"metrics": metrics})
    if isinstance(config.feed, IbFeedConfig):
        from monitor.live import run_live  # noqa: PLC0415 - only live runs import ib_async

        portfolio, rules = app.load_common(config, path)
        asyncio.run(run_live(config, portfolio, rules, config_path=path))
        return EXIT_OK
    prepared = app.prepare(config, config_path=path)
    result = asyncio.run(app.run(prepared))
    print(summary.render_for_stream(result))
    return EXIT_TRUNCATED if result.replay.truncated else EXIT_OK


def _backtest(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from monitor import backtest  # noqa: PLC0415
    from monitor.portfolio.model import load_portfolio  # noqa: PLC0415
    from monitor.rules.loader import load_rule_set  # noqa: PLC0415

    config = _offline_config(args.config, args.portfolio, args.rules, args.rate)
    portfolio = load_portfolio(config.portfolio)
    rule_set = load_rule_set(config.rules)
    rules = rule_set.rules
    result = backtest.backtest(
        args.sessions, config, portfolio, rule_set, alerts_out=args.alerts_out
    )
    if args.json:
        print(json.dumps(backtest.to_json(result), sort_keys=True))
    else:
        print(backtest.render(result, rules))
    return EXIT_TRUNCATED if result.truncated else EXIT_OK


def _rules(args: argparse.Namespace) -> int:
    from monitor.rules.loader import load_rules  # noqa: PLC0415

    if args.rules_command == "explain":
        return _explain(args)
    for path in args.paths:
        rules = load_rules([path])
        print(f"{path}: OK — {len(rules)} rules: {', '.join(r.name for r in rules)}")
    return EXIT_OK


def _offline_config(
    path: Path | None, portfolio: Path | None, rules: list[Path] | None, rate: float | None
) -> DaemonConfig:
    """The config of a run that reads recorded sessions (backtest, explain): ``path``'s, or
    the embedded default's sections; ``portfolio``, ``rules`` and ``rate`` override it."""
    from monitor.app import default_config  # noqa: PLC0415
    from monitor.config import load_config  # noqa: PLC0415

    if path is None and (portfolio is None or not rules):
        raise MonitorError("give --config, or both --portfolio and --rules")
    config = load_config(path) if path is not None else default_config(Path.cwd())
    update: dict[str, object] = {}
    if portfolio is not None:
        update["portfolio"] = portfolio
    if rules:
        update["rules"] = rules
    if rate is not None:
        update["pricing"] = config.pricing.model_copy(update={"rate": rate})
    return config.model_copy(update=update)


def _explain(args: argparse.Namespace) -> int:
    from monitor.backtest import replay_to_end  # noqa: PLC0415
    from monitor.portfolio.model import load_portfolio  # noqa: PLC0415
    from monitor.rules.explain import explain  # noqa: PLC0415
    from monitor.rules.loader import load_rule_set  # noqa: PLC0415

    rule_set = load_rule_set(args.rules)
    rules = rule_set.rules
    rule = next((r for r in rules if r.name == args.name), None)
    if rule is None:
        known = ", ".join(r.name for r in rules)
        raise MonitorError(f"no rule named {args.name!r} (loaded: {known})")
    if args.session is None:
        print(explain(rule, None, None))
        return EXIT_OK
    if args.portfolio is None:
        raise MonitorError("--session needs --portfolio")
    config = _offline_config(None, args.portfolio, args.rules, None)
    pipeline = replay_to_end(args.session, config, load_portfolio(args.portfolio), rule_set)
    if pipeline.evaluated is None:
        raise MonitorError(f"{args.session}: no evaluation in the session (no market data)")
    # What the rules last saw: with a failing or unvalued book, that book, not an older one.
    print(explain(rule, pipeline.evaluated, pipeline.engine))
    return EXIT_OK


def _silence(args: argparse.Namespace) -> int:
    from monitor.sinks.journal import Journal  # noqa: PLC0415

    now = datetime.now(UTC)
    journal = Journal(args.journal)
    if args.silence_command == "add":
        matchers: dict[str, str] = {}
        for text in args.match:
            name, sep, value = text.partition("=")
            if not sep or not name or not value:
                raise MonitorError(f"--match {text!r}: expected LABEL=VALUE")
            matchers[name] = value
        starts = args.starts or now
        if (args.duration is None) == (args.ends is None):
            raise MonitorError("give exactly one of --duration and --ends")
        ends = args.ends or starts + args.duration
        try:
            sid = journal.add_silence(matchers, starts, ends, args.comment, now)
        except ValueError as exc:
            raise MonitorError(f"silence: {exc}") from None
        print(f"silence {sid}: {matchers} from {starts.isoformat()} to {ends.isoformat()}")
    elif args.silence_command == "list":
        for s in journal.silences():
            state = "active" if s.active(now) else ("pending" if now < s.starts else "expired")
            shown = " ".join(f"{m.name}={m.value}" for m in s.matchers)
            print(
                f"{s.id:4d}  {state:8s} {s.starts.isoformat()} .. {s.ends.isoformat()}  "
                f"{shown}  {s.comment}"
            )
    elif not journal.expire_silence(args.id, now):
        raise MonitorError(f"silence {args.id}: no such silence in force")
    else:
        print(f"silence {args.id} expired")
    return EXIT_OK


def _mqtt_sign(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415
    import secrets  # noqa: PLC0415
    import time  # noqa: PLC0415

    from monitor.config import MqttConfig, load_config  # noqa: PLC0415
    from monitor.delivery.commands import (  # noqa: PLC0415
        ENVELOPE,
        Refusal,
        command_topic,
        sign_command,
        topic_base,
        validate,
    )
    from monitor.delivery.service import read_command_secret  # noqa: PLC0415

    mqtt, instance = MqttConfig(), "default"
    if args.config is not None:
        config = load_config(args.config)
        mqtt, instance = config.mqtt, config.instance
    if args.secret_file is not None:
        mqtt = mqtt.model_copy(
            update={"command_secret_file": args.secret_file, "command_secret_credential": None}
        )
    secret = read_command_secret(mqtt, args.config)
    if secret is None:
        raise MonitorError("no command secret: give --secret-file, or a --config that names one")
    try:
        fields = json.loads(args.fields)
    except ValueError as exc:
        raise MonitorError(f"fields: not JSON ({exc})") from None
    if not isinstance(fields, dict) or any(k in fields for k in ENVELOPE):
        raise MonitorError(f"fields: a JSON object without {', '.join(ENVELOPE)}")
    checked = validate(args.name, fields)
    if isinstance(checked, Refusal):
        raise MonitorError(f"{args.name}: {checked.message}")
    base = topic_base(args.prefix or mqtt.prefix, args.instance or instance)
    topic = command_topic(base, args.name)
    payload = sign_command(secret, topic, fields, ts=int(time.time()), nonce=secrets.token_hex(8))
    print(json.dumps(payload, ensure_ascii=False))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from monitor import app  # noqa: PLC0415
    from monitor.config import IbFeedConfig, load_config  # noqa: PLC0415
    from monitor.domain.instruments import NEW_YORK  # noqa: PLC0415
    from monitor.portfolio.model import portfolio_warnings  # noqa: PLC0415

    config = load_config(args.config)
    if isinstance(config.feed, IbFeedConfig):
        portfolio, rules = app.load_common(config, args.config)
        print(
            f"{args.config}: OK — IB feed {config.feed.host}:{config.feed.port} "
            f"(client id {config.feed.client_id}), {len(portfolio.strategies)} strategies in "
            f"the portfolio file, {len(rules.rules)} rules"
        )
        session_date = datetime.now(NEW_YORK).date()  # a live run's session is today's
    else:
        prepared = app.prepare(config, config_path=args.config)
        portfolio, session_date = prepared.portfolio, prepared.reader.header.session_date
        print(
            f"{args.config}: OK — session {session_date} "
            f"({len(prepared.reader.header.instruments)} instruments), "
            f"{len(portfolio.strategies)} strategies, {len(prepared.rules.rules)} rules"
        )
    for warning in portfolio_warnings(portfolio, session_date):
        print(f"{portfolio.source}: warning: {warning}")
    return EXIT_OK


def _ib_check(args: argparse.Namespace) -> int:
    from monitor import app, ib_check, live  # noqa: PLC0415
    from monitor.config import IbFeedConfig, load_config  # noqa: PLC0415

    config = load_config(args.config)
    if not isinstance(config.feed, IbFeedConfig):
        raise MonitorError(f'{args.config}: [feed] kind is not "ib"; ib-check needs a live feed')
    portfolio, _rules = app.load_common(config, args.config)
    now = datetime.now(UTC)
    instruments = live.with_underlyings(
        live.base_instruments(config.feed, now) + [leg.instrument for leg in portfolio.legs]
    )
    report = asyncio.run(
        ib_check.collect(config.feed, instruments, portfolio, wait_seconds=args.wait)
    )
    print(ib_check.render(report))
    return EXIT_NOT_PRICED if report.unpriced_legs else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from monitor import logs  # noqa: PLC0415

    logs.configure(args.log_level, args.log_stream)
    try:
        if args.command in {"run", "replay", "record"}:
            return _run(args)
        if args.command == "check-config":
            return _check(args)
        if args.command == "backtest":
            return _backtest(args)
        if args.command == "rules":
            return _rules(args)
        if args.command == "silence":
            return _silence(args)
        if args.command == "mqtt":
            return _mqtt_sign(args)
        if args.command == "ib-check":
            return _ib_check(args)
        from monitor.feeds import generator  # noqa: PLC0415

        layout = generator.Layout(spx_expiries=tuple(args.spx_expiry))
        try:
            path = generator.write_session(
                args.out, seed=args.seed, scenario=args.scenario, layout=layout
            )
        except ValueError as exc:  # an extra expiry the generator cannot quote
            print(f"condor-monitor: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    except BackgroundTaskError as exc:
        print(f"condor-monitor: error: {exc}", file=sys.stderr)
        return EXIT_TASK_FAILED
    except MonitorError as exc:
        print(f"condor-monitor: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("condor-monitor: interrupted", file=sys.stderr)
        return 130
    print(f"wrote {path}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

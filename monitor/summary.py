"""The end-of-run summary printed by `run` and `replay`, every number with its unit."""

from __future__ import annotations

import math

from monitor import logs
from monitor.app import RunSummary
from monitor.domain.instruments import NEW_YORK
from monitor.portfolio.book import Risk
from monitor.portfolio.pnl import StrategyPnl
from monitor.portfolio.scenarios import ScenarioGrid
from monitor.portfolio.stress import DOWN5, Horizon, StressView


def _money(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    sign = "-" if value < 0 else "+"
    return f"{sign}${abs(value):,.0f}"


def _risk_lines(risk: Risk, indent: str) -> list[str]:
    return [
        (
            f"{indent}delta   {_money(risk.delta_usd_per_spx_point)} per SPX point"
            f"  ({_money(risk.delta_usd_per_pct)} per 1% SPX move)"
        ),
        f"{indent}gamma   {_money(risk.gamma_usd_per_pct)} of delta per 1% SPX move",
        (
            f"{indent}vega    {_money(risk.vega_usd_per_vol_point)} per SPX vol point;"
            f"  VIX layer {_money(risk.vix_vega_usd_per_point)} per VIX-future point"
        ),
        f"{indent}theta   {_money(risk.theta_usd_per_day)} per calendar day",
        f"{indent}beta-weighted delta  {_money(risk.beta_delta_usd_per_pct)} per 1% SPX move",
    ]


def _pnl_lines(pnl: StrategyPnl, indent: str) -> list[str]:
    """P&L against the entry, where the entry prices are known."""
    if not math.isfinite(pnl.pnl_usd):
        return []
    line = f"{indent}P&L     {_money(pnl.pnl_usd)} against the entry"
    if math.isfinite(pnl.credit_usd) and pnl.credit_usd != 0.0:
        line += (
            f" (credit ${pnl.credit_usd:,.0f})"
            if pnl.credit_usd > 0
            else f" (debit ${-pnl.credit_usd:,.0f})"
        )
    lines = [line]
    if math.isfinite(pnl.max_loss_usd):
        lines.append(
            f"{indent}        {pnl.pnl_pct_of_credit:+.1f}% of the credit, "
            f"{pnl.pnl_pct_of_max_loss:+.1f}% of the max loss ${pnl.max_loss_usd:,.0f}; "
            f"break-evens {pnl.break_even_low:,.2f} and {pnl.break_even_high:,.2f} SPX"
        )
    return lines


def _compact(risk: Risk) -> str:
    return (
        f"delta {_money(risk.delta_usd_per_pct)}/1% SPX, gamma {_money(risk.gamma_usd_per_pct)}"
        f"/1% SPX, vega {_money(risk.vega_usd_per_vol_point)}/vol pt, VIX "
        f"{_money(risk.vix_vega_usd_per_point)}/VIX pt, theta {_money(risk.theta_usd_per_day)}/day"
    )


def _cell(grid: ScenarioGrid, move: float, shock: float) -> tuple[float, float]:
    if not (math.isfinite(move) and math.isfinite(shock)):
        return (math.nan, math.nan)
    i, j = grid.spx_moves_pct.index(move), grid.vol_shocks_points.index(shock)
    return (float(grid.condor_usd[i, j]), float(grid.hedge_usd[i, j]))


def _coverage(ratio: float) -> str:
    return f"coverage {100.0 * ratio:.0f}%" if math.isfinite(ratio) else "coverage n/a"


def _stress_lines(stress: StressView, indent: str) -> list[str]:
    """The -5 % stress now and at the close, and the worst move."""
    now, close = stress.at(DOWN5), stress.at(DOWN5, Horizon.CLOSE)
    if not math.isfinite(now.book_usd):
        return [f"{indent}stress SPX -5%: n/a (a leg or VIX not valued)"]
    share = stress.pct_of_account(now.book_usd)
    worst = stress.worst()
    return [
        (
            f"{indent}stress SPX -5% with VIX to {now.vix_after:.2f}: book {_money(now.book_usd)}"
            + (f" ({share:+.1f}% of the account)" if math.isfinite(share) else "")
            + f", condors {_money(now.condor_usd)}, VIX layer {_money(now.hedge_usd)}"
            f" (hedge {_coverage(now.coverage)})"
        ),
        (
            f"{indent}  by the close ({stress.hours_to_close:.1f} h of decay): book "
            f"{_money(close.book_usd)}, {_coverage(close.coverage)}; worst move now: SPX "
            f"{worst.spx_move_pct:+g}% book {_money(worst.book_usd)}"
        ),
    ]


def render(summary: RunSummary) -> str:
    replay = summary.replay
    lines = [
        "",
        (
            f"Session {summary.session_date} replayed from {summary.session.name} "
            f"in {summary.wall_seconds:.1f} s wall time"
        ),
        (
            f"  events read        {replay.events:,} "
            f"(quotes {summary.events['quote']:,}, index values {summary.events['index']:,})"
        ),
        f"  bad lines skipped  {replay.bad_lines:,}"
        + (
            "  (" + ", ".join(f"{k} {v}" for k, v in sorted(replay.bad_by_reason.items())) + ")"
            if replay.bad_lines
            else ""
        ),
    ]
    if replay.truncated:
        lines.append(f"  INPUT TRUNCATED    {replay.truncation_reason}")
    rejected = summary.rejected_quotes
    lines.append(
        "  unusable quotes    "
        + (
            ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(rejected.items()))
            if rejected
            else "none"
        )
        + ("  (legs priced from a model vol meanwhile)" if rejected else "")
    )
    ticks = summary.rejected_ticks
    lines.append(
        "  rejected ticks     "
        + (", ".join(f"{k} {v:,}" for k, v in sorted(ticks.items())) if ticks else "none")
        + ("  (outside the sanity bounds: never used)" if ticks else "")
    )
    lines.append(f"  snapshots          {summary.snapshots:,}")
    if summary.failed_batches:
        lines.append(
            f"  FAILED BATCHES     {summary.failed_batches:,} (the rules ran on the last good "
            "book; see batch_failed in the log)"
        )
    fired = {rule: n for rule, n in summary.fired.items() if n}
    lines.append(
        "  alerts fired       "
        + (", ".join(f"{rule} x{n}" for rule, n in sorted(fired.items())) if fired else "none")
    )
    final = summary.final
    if final is not None:
        when = final.time.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S ET")
        lines.append(
            f"  final book at {when}: SPX {final.spx:,.2f}, VIX {final.vix:.2f}, "
            f"VX1 {final.term.vx1:.2f}, VX2 {final.term.vx2:.2f} (index/VIX points)"
        )
        lines.extend(_risk_lines(final.book.total, "    "))
        grid = final.scenarios
        if grid is not None:
            pnl, move, shock = grid.worst(grid.book_usd)
            condor, hedge = _cell(grid, move, shock)
            lines.append(
                f"    scenario grid: worst book P&L {_money(pnl)} at SPX {move:+g}% and SPX vol "
                f"{shock:+g} points (condor {_money(condor)}, hedge {_money(hedge)})"
            )
        lines.extend(_stress_lines(final.stress, "    "))
        for label, groups in (
            ("by underlying", final.book.by_underlying),
            ("by expiry", final.book.by_expiry),
        ):
            lines.append(f"    {label}:")
            lines.extend(f"      {g.name:16s} {_compact(g.risk)}" for g in groups)
        for strategy in final.book.strategies:
            model = (
                f", {strategy.model_priced_legs} leg(s) on model vol"
                if strategy.model_priced_legs
                else ""
            )
            lines.append(f"    {strategy.name} ({strategy.kind.value}{model}):")
            lines.extend(_risk_lines(strategy.risk, "      "))
            lines.extend(_pnl_lines(strategy.pnl, "      "))
    lines.append(f"  journal            {summary.journal}")
    if summary.alerts_out is not None:
        lines.append(f"  alerts file        {summary.alerts_out}")
    if summary.metrics_url is not None:
        lines.append(f"  metrics were at    {summary.metrics_url}")
    return "\n".join(lines)


def render_for_stream(summary: RunSummary) -> str:
    """The report as text; as one JSON log line (event ``run_summary``, its text lines under
    ``lines``) when log lines share stdout, so that stream stays JSON throughout."""
    text = render(summary)
    if not logs.to_stdout():
        return text
    return logs.json_line("run_summary", "info", "monitor.summary", {"lines": text.splitlines()})

"""Surge: messages arrive at 5× a topic's configured rate for 30 s; handler executions per second with
and without the limiter (issue 8, item 3). Writes docs/rate-limiting.png.

    .venv/bin/python -m bench.ratelimit_surge                  # 20/s, burst 20, 100/s for 30 s
    .venv/bin/python -m bench.ratelimit_surge --seconds 10 --no-plot

It runs the processes of the rate-limit tests (``tests.ratelimit.settings``: a prefork worker ×2 and a
``runbridge``, on the test services), on a one-partition topic, three ways: no limit; the bridge's
intake limit (``RATE_LIMITS``); the handler's limit (``throttle=``). Handler start times are recorded
by the handler itself. The peak is the most starts in any one-second window (sliding), the cap the
issue states is ``rate + burst``.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

MODES = ("none", "intake", "handler")
LABELS = {"none": "no limit", "intake": "bridge intake limit (RATE_LIMITS)", "handler": "handler limit (throttle=)"}
DOCS = Path(__file__).resolve().parent.parent / "docs"


@dataclass(frozen=True)
class Surge:
    """One run: handler start times and the bridge's confirmed publishes, in seconds from the start of the surge."""

    mode: str
    rate: float
    burst: float
    sent: int
    seconds: float
    starts: tuple[float, ...]
    published: tuple[float, ...] = ()

    @property
    def peak(self) -> int:
        """The most handler starts in any one second."""
        from tests.ratelimit.rates import peak

        return peak(self.starts)

    @property
    def published_peak(self) -> int:
        """The most messages the bridge handed to Celery in any one second."""
        from tests.ratelimit.rates import peak

        return peak(self.published)

    @property
    def cap(self) -> float:
        return self.rate + self.burst

    def per_second(self, until: float) -> list[int]:
        from tests.ratelimit.rates import per_second

        return per_second(self.starts, 0.0, until)


def surge(mode: str, *, rate: float, burst: float, multiple: float, seconds: float, log_dir: Path, drain: float = 10.0) -> Surge:
    """Send ``multiple × rate`` messages a second for ``seconds`` through a bridge and a worker limited as
    ``mode`` says; record handler starts until everything ran or ``drain`` seconds after the surge."""
    import redis
    from confluent_kafka.admin import AdminClient

    from tests import support
    from tests.app import recorder
    from tests.ratelimit import rig
    from tests.ratelimit.app.hooks import published

    assert mode in MODES, mode
    ns = f"kbs{uuid4().hex[:10]}"
    topic = f"{ns}.throttled" if mode == "handler" else f"{ns}.timed"
    limit = {"RATE": rate, "BURST": burst}
    env = rig.limits_env(rate_limits={topic: limit} if mode == "intake" else None, throttle=limit if mode == "handler" else None)
    admin = AdminClient({"bootstrap.servers": support.KAFKA})
    support.create_topics(admin, [topic], partitions=1)
    processes = []
    try:
        processes.extend(rig.start(ns, log_dir, env, topics=[topic]))
        producer = support.producer()
        warm_up(producer, topic, ns)
        per_second = multiple * rate
        began = time.time()
        sent = 0
        while sent < per_second * seconds:
            producer.produce(topic, key=str(sent).encode(), value=b"{}")
            producer.poll(0)
            sent += 1
            time.sleep(max(0.0, began + sent / per_second - time.time()))
        assert producer.flush(30) == 0, "not every surge message reached Kafka"
        deadline = began + seconds + drain
        while time.time() < deadline and recorder.client().llen(recorder.key("started", ns)) < sent + WARM_UP:
            time.sleep(0.2)
        starts = tuple(sorted(at - began for at, _ in recorder.started(ns) if at >= began))
        return Surge(mode=mode, rate=rate, burst=burst, sent=sent, seconds=seconds, starts=starts,
                     published=tuple(at - began for at in published(ns) if at >= began))
    finally:
        for process in processes:  # killed: the limited runs leave a backlog, which a graceful stop would wait for
            process.signal(signal.SIGKILL)
            process.stop()
        rig.forget_state(redis.Redis.from_url(support.BROKER_URL), ns)
        keys = list(recorder.client().scan_iter(f"{ns}:*", count=1000))
        if keys:
            recorder.client().delete(*keys)
        admin.delete_topics([topic])


WARM_UP = 1
"""Messages sent, and handled, before the surge's clock starts."""


def warm_up(producer: Any, topic: str, ns: str) -> None:
    """Send one message through the whole path and wait until its handler started.

    A bridge's first publish also opens its broker connection and declares the queue; the grants the
    limiter makes meanwhile would be confirmed together with the burst, so the first second of
    confirmations (and of handler starts) would show more than the limiter granted in any second. The
    surge measures the limit, not a process's first connection, so it starts on a path already open.
    """
    from tests import support
    from tests.app import recorder

    producer.produce(topic, key=b"warm-up", value=b"{}")
    assert producer.flush(30) == 0, "the warm-up message did not reach Kafka"
    support.wait_until(lambda: recorder.client().llen(recorder.key("started", ns)) >= WARM_UP, timeout=60,
                       what="the warm-up message's handler to start")


def cut(without: Surge, with_limit: Surge) -> float:
    """How much lower the limited peak is, as a fraction of the unlimited one."""
    return 1.0 - with_limit.peak / without.peak if without.peak else 0.0


def plot(runs: list[Surge], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    until = int(max(run.seconds for run in runs) + 8)
    figure, axes = plt.subplots(figsize=(9, 5.2))
    styles = {"none": ("tab:red", "-"), "intake": ("tab:blue", "-"), "handler": ("tab:green", "--")}
    for run in runs:
        colour, line = styles[run.mode]
        axes.step(range(until), run.per_second(until), where="post", color=colour, linestyle=line,
                  label=f"{LABELS[run.mode]}: peak {run.peak}/s")
    first = runs[0]
    axes.axhline(first.cap, color="grey", linestyle=":", label=f"rate + burst = {first.cap:.0f}/s")
    axes.axhline(first.rate, color="grey", linestyle="-.", linewidth=0.8, label=f"rate = {first.rate:.0f}/s")
    axes.axvspan(0, first.seconds, color="orange", alpha=0.08, label=f"surge: {first.sent / first.seconds:.0f} msg/s for {first.seconds:.0f} s")
    axes.set_xlabel("seconds from the start of the surge")
    axes.set_ylabel("handler executions per second")
    axes.set_title("A surge of 5× the configured rate, with and without the limiter")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    axes.set_xlim(0, until)
    axes.set_ylim(bottom=0)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ratelimit_surge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="configured rate, tokens/s (default 20)")
    parser.add_argument("--burst", type=float, default=20.0, help="configured burst (default 20)")
    parser.add_argument("--multiple", type=float, default=5.0, help="surge = this × rate (default 5)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the surge (default 30)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--out", type=Path, default=DOCS / "rate-limiting.png")
    parser.add_argument("--no-plot", action="store_true")
    options = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="kb-surge-"))
    runs = []
    for mode in options.modes.split(","):
        print(f"surge, {LABELS[mode]}: {options.multiple * options.rate:.0f}/s for {options.seconds:.0f} s ...", file=sys.stderr)
        runs.append(surge(mode, rate=options.rate, burst=options.burst, multiple=options.multiple,
                          seconds=options.seconds, log_dir=log_dir))
    print(f"\nconfigured: rate {options.rate:g}/s, burst {options.burst:g}; surge {options.multiple:g}× = "
          f"{options.multiple * options.rate:g}/s for {options.seconds:g} s; cap = rate + burst = {options.rate + options.burst:g}/s")
    print(f"{'run':<36} {'sent':>6} {'started':>8} {'peak/s':>7}  {'≤ cap':>5}  {'cut vs none':>11}  {'bridge peak/s':>13}")
    baseline = next((run for run in runs if run.mode == "none"), None)
    for run in runs:
        versus = f"{cut(baseline, run):.0%}" if baseline is not None and run is not baseline else "—"
        print(f"{LABELS[run.mode]:<36} {run.sent:>6} {len(run.starts):>8} {run.peak:>7}  {'yes' if run.peak <= run.cap else 'NO':>5}  "
              f"{versus:>11}  {run.published_peak:>13}")
    for run in runs:
        print(f"  {run.mode:<8} per second: {run.per_second(int(run.seconds + 8))}")
    if not options.no_plot:
        plot(runs, options.out)
        print(f"wrote {options.out}")
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

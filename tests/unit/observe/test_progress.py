import io

from loadgate.observe.progress import Progress, format_line


def test_format_line_pins_the_fields() -> None:
    line = format_line(
        phase="measure",
        elapsed_s=12.34,
        total_s=70,
        rps=512.25,
        done=6000,
        failed=2,
        violations=0,
        inflight=100,
        p99_ms=3.456,
    )
    assert line == (
        "measure    12.3/70s     512.2 req/s  done 6000  errors 2  integrity 0"
        "  in-flight 100  overhead p99(1s) 3.46 ms"
    )
    assert format_line(
        phase="warm-up",
        elapsed_s=0,
        total_s=1,
        rps=0,
        done=0,
        failed=0,
        violations=0,
        inflight=0,
        p99_ms=None,
    ).endswith("p99(1s) -")


def test_not_a_terminal_prints_nothing_until_attached() -> None:
    buf = io.StringIO()
    p = Progress(enabled=True, total_s=10, warmup_s=1, stream=buf)
    p.tick()
    p.close()
    assert buf.getvalue() == ""

"""Change-point detection, log templates and the scrubber, on data whose answer is known."""

import random

from evidence.changepoint import detect
from evidence.scrub import scrub_labels, scrub_text
from evidence.templates import mine


def series(levels: list[tuple[int, float]], noise: float = 0.0, seed: int = 1):
    rng = random.Random(seed)
    out, t = [], 1000.0
    for count, level in levels:
        for _ in range(count):
            out.append((t, level + rng.uniform(-noise, noise)))
            t += 60
    return out


def test_a_step_is_found_where_it_happened_with_its_size():
    found = detect(series([(40, 100.0), (20, 400.0)], noise=5))
    assert found is not None and found.index == 40 and found.direction == "up"
    assert found.time == 1000.0 + 40 * 60
    assert 280 < found.change_pct < 320


def test_noise_and_one_spike_are_not_a_change():
    flat = series([(60, 100.0)], noise=10, seed=3)
    assert detect(flat) is None
    spiky = list(flat)
    spiky[30] = (spiky[30][0], 10_000.0)
    assert detect(spiky) is None


def test_a_drop_and_a_rise_from_zero():
    assert detect(series([(30, 50.0), (30, 5.0)], noise=1)).direction == "down"
    from_zero = detect(series([(30, 0.0), (30, 0.2)]))
    assert from_zero is not None and from_zero.change_pct is None


def test_too_few_points_say_nothing():
    assert detect(series([(2, 1.0), (2, 9.0)])) is None


def test_templates_group_variants_count_them_and_flag_what_is_new():
    onset = 10_000.0
    before = [(onset - 600 + i, f"GET /health took {i} ms") for i in range(5)]
    after = [
        (onset + i, f"ERROR payment gateway timeout after {1000 + i} ms order={i}")
        for i in range(8)
    ] + [(onset + 50 + i, f"GET /health took {i} ms") for i in range(3)]
    templates = mine(before + after, baseline_before=onset)
    top = templates[0]
    assert top["count"] == 8 and top["new"] is True and top["first_seen"] == onset
    assert "<*>" in top["template"] and "gateway timeout" in top["template"]
    health = next(t for t in templates if "health" in t["template"])
    assert health["new"] is False and health["baseline_count"] == 5 and health["count"] == 3


def test_secrets_are_scrubbed_from_lines_and_labels():
    line = (
        "login failed password=hunter2 Authorization: Bearer abcdefghijklmnop "
        "key AKIAABCDEFGHIJKLMNOP url postgres://app:s3cret@db:5432/x"
    )
    clean = scrub_text(line)
    for secret in ("hunter2", "abcdefghijklmnop", "AKIAABCDEFGHIJKLMNOP", "s3cret"):
        assert secret not in clean
    assert "login failed" in clean
    assert scrub_labels({"token": "api_key=xyz123456"}) == {"token": "api_key=***"}

"""The customer pages' colours meet WCAG 2.2 contrast (issue 11.6, an axe-style check that
runs without a browser): 4.5:1 for text (SC 1.4.3), 3:1 for focus rings and chart bars
(SC 1.4.11). Each pair is read from the stylesheet, so changing a colour there without
checking it here fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import greenbutton.web
from greenbutton.analysis import _charts

CSS = (Path(greenbutton.web.__file__).parent / "static" / "style.css").read_text()


def _luminance(hex_color: str) -> float:
    channels = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _rule(selector: str) -> str:
    found = re.search(re.escape(selector) + r"\s*\{([^}]*)\}", CSS)
    assert found is not None, f"no rule for {selector!r} in style.css"
    return found.group(1)


def _colour(selector: str, prop: str) -> str:
    found = re.search(rf"(?:^|[;\s]){prop}:\s*(#[0-9a-fA-F]{{6}})", _rule(selector))
    assert found is not None, f"{selector} has no {prop}"
    return found.group(1).lower()


WHITE, PAGE = "#ffffff", _colour("body", "background")
TEXT = [  # (what, foreground, background)
    ("body text", _colour("body", "color"), PAGE),
    ("header brand on the bar", "#ffffff", _colour("header", "background")),
    ("links", _colour("a", "color"), WHITE),
    ("links on the page background", _colour("a", "color"), PAGE),
    ("buttons", "#ffffff", _colour(".button, button", "background")),
    ("danger buttons", "#ffffff", _colour(".button.danger, button.danger", "background")),
    ("secondary buttons", _colour(".button.secondary, button.secondary", "color"), WHITE),
    ("selected range", "#ffffff", _colour(".ranges a.selected", "background")),
    ("address and dates", _colour(".address, .span", "color"), WHITE),
    ("facts", _colour(".facts", "color"), WHITE),
    ("captions", _colour("figcaption", "color"), WHITE),
    ("table heads", _colour("thead th", "color"), WHITE),
    ("notices", _colour("body", "color"), _colour(".notice", "background")),
]


@pytest.mark.parametrize(("what", "fg", "bg"), TEXT, ids=[t[0] for t in TEXT])
def test_text_contrast(what: str, fg: str, bg: str) -> None:
    assert contrast(fg, bg) >= 4.5, f"{what}: {fg} on {bg} is {contrast(fg, bg):.2f}:1"


def test_focus_ring_and_chart_bars_stand_out() -> None:
    ring = re.search(r"outline: 3px solid (#[0-9a-f]{6})", CSS)
    assert ring is not None
    assert contrast(ring.group(1), WHITE) >= 3 and contrast(ring.group(1), PAGE) >= 3
    for bar in (_charts._USE_COLOR, _charts._EXPORT_COLOR):  # the dashboard's bars
        assert contrast(bar, WHITE) >= 3, bar


def test_the_check_can_fail() -> None:
    assert contrast("#777777", WHITE) < 4.5 < contrast("#767676", "#000000")
    assert contrast("#000000", WHITE) == pytest.approx(21)

"""The server-side SVG chart: well-formed, accessible, scaled to the data, and never markup from the data."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from kafkabridge.contrib.django.charts import PALETTE, Series, line_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"
LABELS = [f"{hour:02d}:00" for hour in range(24)]


def chart(*series: Series, **options: str) -> ET.Element:
    markup = line_chart(list(series), LABELS, title=options.get("title", "Failures per hour"),
                        description=options.get("description", "Dead letters per topic, last 24 hours"),
                        x_label="Hour (UTC)", y_label="Failures per hour")
    return ET.fromstring(markup)


def test_the_chart_names_itself_for_assistive_technology() -> None:
    svg = chart(Series("orders", [0] * 24))

    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert svg.get("role") == "img"
    assert title is not None and desc is not None
    assert title.text == "Failures per hour" and desc.text == "Dead letters per topic, last 24 hours"
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


def test_both_axes_are_labelled() -> None:
    texts = [t.text for t in chart(Series("orders", [1] * 24)).iter(f"{SVG}text")]

    assert "Hour (UTC)" in texts and "Failures per hour" in texts
    assert "00:00" in texts and "21:00" in texts and "01:00" not in texts  # every third hour is printed


def test_each_series_is_one_line_with_its_own_colour_and_a_legend_entry() -> None:
    svg = chart(Series("orders", [0] * 24), Series("refunds", [2] * 24))

    lines = svg.findall(f".//{SVG}polyline")
    legend = [t.text for t in svg.find(f"{SVG}g[@class='kb-legend']").iter(f"{SVG}text")]
    assert [line.get("stroke") for line in lines] == [PALETTE[0], PALETTE[1]]
    assert legend == ["orders", "refunds"]
    assert all(len(line.get("points").split()) == 24 for line in lines)


def test_the_highest_value_reaches_the_top_tick_and_zero_lies_on_the_x_axis() -> None:
    values = [0] * 23 + [37]
    svg = chart(Series("orders", values))

    points = [tuple(map(float, p.split(","))) for p in svg.find(f".//{SVG}polyline").get("points").split()]
    ticks = [t.text for t in svg.find(f"{SVG}g[@class='kb-axes']").iter(f"{SVG}text") if t.text.isdigit()]
    assert ticks == ["0", "10", "20", "30", "40"]
    assert points[0][1] == 216.0  # the plot's bottom: top 16 + plot height (280 - 16 - 64)
    assert 16 < points[-1][1] < 16 + 200 * (1 - 30 / 40)  # 37 of 40: above the "30" gridline


def test_points_carry_a_tooltip_with_series_value_and_hour_and_zeros_have_none() -> None:
    svg = chart(Series("orders", [0] * 13 + [5] + [0] * 10))

    tips = [c.find(f"{SVG}title").text for c in svg.iter(f"{SVG}circle")]
    assert tips == ["orders: 5 at 13:00"]


def test_names_from_the_data_are_escaped() -> None:
    markup = line_chart([Series('<script>alert("x")</script>', [1] * 24)], LABELS, title="a & b", description="<d>",
                        x_label="x", y_label="y")

    assert "<script>" not in markup and "&lt;script&gt;" in markup
    ET.fromstring(markup)  # still well-formed XML


def test_a_series_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="'orders' has 3 values for 24 labels"):
        line_chart([Series("orders", [1, 2, 3])], LABELS, title="t", description="d", x_label="x", y_label="y")


def test_no_series_still_draws_labelled_empty_axes() -> None:
    svg = chart()

    assert svg.find(f".//{SVG}polyline") is None
    assert "Hour (UTC)" in [t.text for t in svg.iter(f"{SVG}text")]


@pytest.mark.parametrize("highest, expected", [(0, [0, 1]), (1, [0, 1]), (2, [0, 1, 2]), (3, [0, 1, 2, 3]), (7, [0, 2, 4, 6, 8]),
                                               (37, [0, 10, 20, 30, 40]), (1000, [0, 200, 400, 600, 800, 1000]),
                                               (0.3, [0, 0.1, 0.2, 0.3])])
def test_ticks_step_by_1_2_or_5_and_reach_past_the_highest_value(highest: float, expected: list[float]) -> None:
    ticks = nice_ticks(highest, whole=highest >= 1)

    assert ticks == pytest.approx(expected)
    assert ticks[-1] >= highest and len(ticks) <= 6


def test_a_legend_of_many_series_wraps_into_rows_and_the_chart_grows_to_hold_them() -> None:
    one_row = chart(*(Series(f"t{i}", [1] * 24) for i in range(3)))
    three_rows = chart(*(Series(f"t{i}", [1] * 24) for i in range(8)))

    assert int(three_rows.get("height")) == int(one_row.get("height")) + 2 * 16
    rects = three_rows.findall(f"{SVG}g[@class='kb-legend']/{SVG}g/{SVG}rect")
    assert len({r.get("y") for r in rects}) == 3 and len({r.get("x") for r in rects}) == 3


def test_a_long_series_name_is_cut_in_the_legend_and_whole_in_its_tooltip() -> None:
    name = "a.very.long.topic.name.that.goes.on.and.on"
    entry = chart(Series(name, [1] * 24)).find(f"{SVG}g[@class='kb-legend']/{SVG}g")

    assert entry.find(f"{SVG}title").text == name
    assert entry.find(f"{SVG}text").text == name[:29] + "…"

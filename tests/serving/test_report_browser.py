"""The chapter report opened in headless Chromium: cards, successors and charts render offline."""

from __future__ import annotations

import pytest

import tests.browser as browser
from features.build import build_features
from serving.report import build_chapter_report, render_report_html, write_report
from tests.browser import (  # noqa: F401  (fixtures)
    blocked_requests,
    file_url,
    image_sizes,
    page_errors,
)
from tests.serving.test_report import META, T, make_community, make_predictions

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    tables = make_community()
    features = build_features(tables, T)
    predictions = make_predictions()
    report = build_chapter_report(predictions, tables, T, features, trend_periods=4)
    html = render_report_html(report, predictions, as_of=T, meta=META, features=features)
    paths = write_report(report, html, tmp_path_factory.mktemp("report"))
    return paths[1]


def test_report_renders_in_chromium(chromium_page, report_file, tmp_path):
    page = chromium_page
    page.goto(file_url(report_file))
    page.wait_for_load_state("load")

    assert page.title() == "Chapter succession report – 2024-07-01"
    cards = page.locator("section.card")
    assert cards.count() == 5
    headings = cards.locator("h3").all_inner_texts()
    assert headings == ['<script>alert("x")</script>', "Lyon", "Paris", "(no chapter)", "Bordeaux"]
    assert cards.first.get_attribute("class") == "card urgent"

    paris = page.locator('section.card[data-chapter="paris"]')
    successors = paris.locator("ol > li > b").all_inner_texts()
    assert successors == ["p4", "p2", "p3"]
    assert "risk of drifting away 75\u00a0% – at risk" in paris.inner_text()
    assert "Hosted a workshop" in paris.inner_text()
    loose = page.locator('section.card[data-chapter=""]')
    assert loose.locator("ol > li > b").all_inner_texts() == ["n1"]

    glance = page.locator("table.glance tbody tr")
    assert glance.count() == 5
    assert "p4, p2, p3" in glance.nth(2).inner_text()

    images = image_sizes(page)
    assert len(images) == 6  # the segment chart and one trend chart per card
    for image in images:
        assert image["complete"] and image["naturalWidth"] > 0 and image["naturalHeight"] > 0
    # The segment chart is rendered at its intended size, not collapsed.
    box = page.locator(".segments img").bounding_box()
    assert box is not None and box["width"] > 300

    assert page_errors(page) == []
    assert blocked_requests(page) == []  # nothing was fetched from outside

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_pages_are_offline_and_record_errors(chromium_page, tmp_path):
    # The check above that nothing was fetched only means something if fetching is caught.
    page_file = tmp_path / "outside.html"
    page_file.write_text(
        '<img src="https://198.51.100.7/pixel.png"><script>throw new Error("boom")</script>',
        encoding="utf-8",
    )
    chromium_page.goto(file_url(page_file))
    chromium_page.wait_for_load_state("load")
    assert blocked_requests(chromium_page) == ["https://198.51.100.7/pixel.png"]
    assert any("boom" in e for e in page_errors(chromium_page))
    assert image_sizes(chromium_page)[0]["naturalWidth"] == 0


def test_missing_browser_skips_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(browser, "CHROMIUM_PATH", tmp_path / "no-chromium")
    monkeypatch.setattr(browser, "_install_outcome", "apt-get is not available on this machine")
    with pytest.raises(pytest.skip.Exception, match="apt-get is not available.*`chromium`"):
        browser.ensure_chromium()

"""The audit itself must be able to fail, or its zero means nothing."""

from tests.e2e.support import BLOCKING_IMPACTS, violations


def test_axe_reports_violations_on_a_deliberately_broken_page(page):
    page.set_content("<html><body><img src='x.png'><button></button></body></html>")

    found = violations(page)

    assert {v["id"] for v in found} >= {"image-alt", "button-name"}
    assert any(v["impact"] in BLOCKING_IMPACTS for v in found)

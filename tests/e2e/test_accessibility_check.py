"""The audit itself must be able to fail, or its zero means nothing."""

from tests.e2e.support import BLOCKING_IMPACTS, open_page, violations


def test_axe_reports_violations_on_a_deliberately_broken_page(page):
    page.set_content("<html><body><img src='x.png'><button></button></body></html>")

    found = violations(page)

    assert {v["id"] for v in found} >= {"image-alt", "button-name"}
    assert any(v["impact"] in BLOCKING_IMPACTS for v in found)


def test_axe_reports_violations_on_a_broken_page_seen_without_javascript(new_context):
    page = open_page(new_context, java_script_enabled=False)
    broken = "<html><head><title>Broken</title></head><body><img src='x.png'><button></button>"
    page.route(
        "http://broken.test/", lambda route: route.fulfill(body=broken, content_type="text/html")
    )
    page.goto("http://broken.test/")

    found = violations(page)

    assert {v["id"] for v in found} >= {"image-alt", "button-name"}

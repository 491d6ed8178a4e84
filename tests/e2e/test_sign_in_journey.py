import pytest

from tests.e2e.support import audit, sign_in
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_person_signs_in_sees_home_and_signs_out(page, live_server):
    make_user(email="andy@example.com", display_name="Andy Brandt")
    page.goto(f"{live_server.url}/")
    audit(page, "sign-in")

    sign_in(page, live_server, "andy@example.com", PASSWORD)

    assert page.get_by_role("heading", level=1).inner_text().startswith("Hello, Andy")
    audit(page, "home")
    page.get_by_role("button", name="Andy Brandt").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in/")


def test_a_wrong_password_is_reported_on_the_form(page, live_server):
    make_user(email="andy@example.com")

    page.goto(f"{live_server.url}/accounts/sign-in/")
    page.get_by_label("Email address").fill("andy@example.com")
    page.get_by_label("Password").fill("not it")
    page.get_by_role("button", name="Sign in").click()

    assert "correct email address and password" in page.locator(".alert-danger").inner_text()

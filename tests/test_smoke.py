import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_anonymous_home_redirects_to_sign_in(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))

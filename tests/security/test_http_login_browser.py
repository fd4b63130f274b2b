"""The dashboard's login in a real browser (Debian's Chromium driven by Playwright), against
a real bus whose database holds users (issue 13, item 6): the dashboard sends us to the
login page, a wrong password is said so in both languages, the right one shows the
dashboard live with the user's name, and logging out sends us back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from http_auth_support import PASSWORDS, seed_users
from playwright.sync_api import Browser, sync_playwright

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_logging_in_through_the_form_shows_the_dashboard(
    bus_factory, node_factory, browser, tmp_path: Path
):
    db = tmp_path / "bus.db"
    seed_users(db)
    bus = bus_factory(db=f"sqlite:///{db}")
    node_factory("echo", bus=bus, node_id="echo-1")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"http://{bus.http}/#/alerts")
        page.wait_for_selector("#login-form", timeout=10_000)
        assert page.url.endswith("/login?next=%2F#/alerts"), page.url
        assert page.locator("h1 .zh").inner_text() == "登录"
        assert page.locator("h1 .en").inner_text() == "Log in"

        page.fill("#login-name", "otto")
        page.fill("#login-password", "not the password")
        page.click("#login-submit")
        page.wait_for_selector('#login-error[data-status="401"]', timeout=10_000)
        assert "用户名或密码错误" in page.locator("#login-error").inner_text()
        assert page.locator("#login-password").input_value() == ""

        page.fill("#login-password", PASSWORDS["otto"])
        page.click("#login-submit")
        page.wait_for_selector('#live[data-state="live"]', timeout=15_000)
        assert page.url == f"http://{bus.http}/#/alerts"  # the page first asked for
        page.wait_for_selector('#user[data-user="otto"]', timeout=10_000)
        assert "operator" in page.locator("#user").inner_text()
        cookie = next(c for c in context.cookies() if c["name"] == "powerbus_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # out of reach of scripts

        page.click('#tabs a[data-page="overview"]')
        page.wait_for_selector('#nodes-table tr[data-node="echo-1"] button.act', timeout=10_000)

        page.click("#logout")
        page.wait_for_selector("#login-form", timeout=10_000)
        page.goto(f"http://{bus.http}/")
        page.wait_for_selector("#login-form", timeout=10_000)
        assert "/login?next=" in page.url

        # A viewer sees the dashboard without the actions it may not take.
        page.fill("#login-name", "vera")
        page.fill("#login-password", PASSWORDS["vera"])
        page.click("#login-submit")
        page.wait_for_selector('#user[data-user="vera"]', timeout=15_000)
        page.wait_for_selector('#nodes-table tr[data-node="echo-1"]', timeout=10_000)
        assert page.locator("#nodes-table button.act").count() > 0
        assert not page.locator("#nodes-table button.act").first.is_visible()
    finally:
        context.close()
    assert errors == []

"""The dashboard in a real browser: Debian's chromium driven by Playwright, against a real
``pmo serve`` with the demo loaded. Screenshots of each panel go to ``test-artifacts/``.

Playwright never downloads a browser here: it launches the system chromium
(``scripts/chromium-local.sh`` installs it; ``PMO_CHROMIUM`` names another binary).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson
import pytest

from tests.e2e.conftest import free_port, pmo_command, wait_until_up

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")

ALL, VIEW = "dash-all-key", "dash-view-key"
KEYS = {ALL: ["publisher", "viewer", "auditor", "admin"], VIEW: ["viewer"]}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
WAIT_MS = 10_000


def chromium_path() -> str:
    path = os.environ.get("PMO_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Debian's chromium is not installed: run scripts/chromium-local.sh "
                    "(make test does)")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``pmo serve`` on a free port, the demo loaded first (through the same store)."""
    home = tmp_path_factory.mktemp("dashboard")
    env = {"PMO_DATA_DIR": str(home / "data"), "PMO_API_KEYS": json.dumps(KEYS)}
    demo = subprocess.run([sys.executable, "-m", "pmo.cli", "demo"], cwd=home, capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120, check=False)
    assert demo.returncode == 0, demo.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = pmo_command("serve", "--port", str(port), "--log-level", "warning", env=env,
                          cwd=home)
    try:
        wait_until_up(base, process)
        yield base
    finally:
        process.terminate()
        process.communicate(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium_path(), headless=True)
        yield launched
        launched.close()


class Page:
    """A browser tab on the dashboard, and every URL it asked for."""

    def __init__(self, tab: Any, base: str) -> None:
        self.tab = tab
        self.base = base
        self.requests: list[str] = []

    def sign_in(self, key: str, hash_: str = "") -> None:
        self.tab.goto(f"{self.base}/{hash_}")
        self.tab.get_by_label("API key").fill(key)
        self.tab.get_by_role("button", name="Sign in").click()
        self.tab.wait_for_selector("body[data-ready]", state="attached", timeout=WAIT_MS)

    def panel(self, name: str) -> None:
        self.tab.click(f"nav button[data-panel={name}]")
        self.tab.wait_for_function(f"document.querySelector('#panel').dataset.panel === '{name}'"
                                   " && document.querySelector('#body').children.length > 0",
                                   timeout=WAIT_MS)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def field(self, selector: str) -> str:
        text: str = self.tab.locator(selector).inner_text(timeout=WAIT_MS)
        return text


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Page]:
    # Playwright evaluates its waiting predicates as strings, which the page's CSP forbids.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    tab = context.new_page()
    watched = Page(tab, server)

    def route(r: Any) -> None:
        watched.requests.append(r.request.url)
        host = urlsplit(r.request.url).hostname
        if r.request.url.startswith("data:") or host == "127.0.0.1":
            r.continue_()
        else:
            r.abort()

    context.route("**/*", route)
    yield watched
    context.close()
    # Nothing left 127.0.0.1, and the key never travelled in a URL.
    outside = [u for u in watched.requests
               if not u.startswith("data:") and urlsplit(u).hostname != "127.0.0.1"]
    assert not outside, outside
    assert watched.requests
    assert not [u for u in watched.requests if ALL in unquote(u) or VIEW in unquote(u)]


def api(base: str, path: str, key: str = ALL, **params: str) -> Any:
    answer = httpx.get(f"{base}{path}", params=params, headers={"Authorization": f"Bearer {key}"},
                       timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def grouped(amount: str) -> str:
    """Money as the page shows it: the API's decimal string with thousands grouped."""
    return f"{Decimal(amount):,}"


def card_numbers(page: Page, portfolio_id: str) -> dict[str, str]:
    card = f"[data-portfolio='{portfolio_id}']"
    fields = ["budget_envelope", "approved_budget", "actual_cost", "estimate_at_completion",
              "cpi", "spi"]
    shown = {f: page.field(f"{card} [data-field={f}]") for f in fields}
    for colour in ("green", "amber", "red", "unknown"):
        shown[colour] = page.field(f"{card} [data-field=health-{colour}]")
    for state in ("proposed", "active", "completed"):
        shown[state] = page.field(f"{card} [data-field=state-{state}]")
    return shown


def expected_numbers(view: dict[str, Any]) -> dict[str, str]:
    out = {f: grouped(view[f]) for f in ("budget_envelope", "approved_budget", "actual_cost",
                                         "estimate_at_completion")}
    out.update({k: str(view[k]) for k in ("cpi", "spi")})
    out.update({c: str(n) for c, n in view["projects_by_health"].items()})
    out.update({s: str(view["projects_by_state"][s]) for s in ("proposed", "active", "completed")})
    return out


def test_a_shared_url_naming_no_panel_opens_the_portfolios(page: Page) -> None:
    # #panel=constructor (an Object built-in, not a panel) rendered an empty panel with
    # "panel.body is not a function".
    page.sign_in(ALL)
    for name in ("constructor", "__proto__", "toString", "hasOwnProperty", "no-such-panel"):
        page.tab.evaluate(f"location.hash = 'panel={name}'")
        page.tab.wait_for_function("document.querySelector('#panel').dataset.panel === "
                                   "'portfolios' && location.hash === '#panel=portfolios' && "
                                   "document.querySelector('[data-portfolio]') !== null",
                                   timeout=WAIT_MS)
        assert page.tab.locator("#error").is_hidden(), name


def test_the_numbers_shown_are_the_apis_for_the_demo_portfolios(page: Page) -> None:
    page.sign_in(ALL)
    page.tab.wait_for_selector("[data-portfolio]", timeout=WAIT_MS)
    portfolios = api(page.base, "/v1/portfolios")["items"]
    assert len(portfolios) >= 3
    for view in portfolios:
        assert card_numbers(page, view["portfolio_id"]) == expected_numbers(view)
    assert page.field("#roles") == "Signed in: admin, auditor, publisher, viewer"
    # The key is in this tab's session storage only: no cookie, not in the page's URL.
    assert page.tab.evaluate("sessionStorage.length") == 1
    assert page.tab.evaluate("document.cookie") == ""
    assert ALL not in page.tab.url
    page.shot("portfolios")


def test_the_project_table_and_a_projects_page_show_the_apis_answers(page: Page) -> None:
    base = page.base
    page.sign_in(ALL)
    page.panel("projects")
    first = api(base, "/v1/projects", limit="25")["items"]
    rows = page.tab.locator("#project-table tbody tr")
    assert rows.count() == len(first)
    assert [rows.nth(i).get_attribute("data-project") for i in range(len(first))] == [
        p["project_id"] for p in first]
    assert page.field(f"[data-project='{first[0]['project_id']}'] [data-field=actual_cost]") == (
        grouped(first[0]["actual_cost"]))
    page.shot("projects")
    # Filters and pages are the server's: state=active, then the next page.
    page.tab.get_by_label("State", exact=True).select_option("active")
    page.tab.get_by_role("button", name="Apply").click()
    active = api(base, "/v1/projects", limit="25", state="active")
    page.tab.wait_for_function("document.querySelector('#project-table caption')"
                               ".textContent.includes('page 1') && location.hash.includes("
                               "'state=active')", timeout=WAIT_MS)
    page.tab.wait_for_function("[...document.querySelectorAll('#project-table tbody tr')]"
                               ".map((r) => r.dataset.project).join() === "
                               f"'{','.join(p['project_id'] for p in active['items'])}'",
                               timeout=WAIT_MS)
    states = page.tab.locator("#project-table tbody td:nth-child(5)").all_inner_texts()
    assert set(states) == {"active"}
    project = active["items"][0]
    if active["next_cursor"]:
        page.tab.get_by_role("button", name="Next page").click()
        second = api(base, "/v1/projects", limit="25", state="active",
                     cursor=active["next_cursor"])
        page.tab.wait_for_function(f"document.querySelector('#project-table tbody tr')"
                                   f".dataset.project === '{second['items'][0]['project_id']}'",
                                   timeout=WAIT_MS)
        project = second["items"][0]

    # A project's page: figures, its history with both times, the cost chart.
    page.tab.locator(f"[data-project='{project['project_id']}'] a").first.click()
    page.tab.wait_for_selector("#timeline li", timeout=WAIT_MS)
    assert page.field("article.project [data-field=actual_cost]") == grouped(
        project["actual_cost"])
    history = api(base, f"/v1/projects/{project['project_id']}/history")["items"]
    assert page.tab.locator("#timeline li").count() == len(history)
    assert history[0]["recorded_at"] in page.field("#timeline li:first-child")
    assert page.tab.locator("figure.chart svg polyline.ac").count() == 1
    page.shot("project")


def test_the_rollup_audit_and_status_panels_show_the_apis_answers(page: Page) -> None:
    base = page.base
    page.sign_in(ALL)
    page.panel("program")
    program = api(base, "/v1/projects/PRJ-001")["program_id"]
    page.tab.get_by_label("Program id").fill(program)
    page.tab.get_by_role("button", name="Show").click()
    page.tab.wait_for_selector(f"[data-program='{program}']", timeout=WAIT_MS)
    view = api(base, f"/v1/programs/{program}")
    assert page.field(f"[data-program='{program}'] [data-field=actual_cost]") == grouped(
        view["actual_cost"])
    page.shot("program")

    page.panel("managers")
    managers = api(base, "/v1/managers", limit="500")["items"]
    assert page.tab.locator("#manager-table tbody tr").count() == len(managers)
    m = managers[0]
    assert page.field(f"[data-manager='{m['manager_id']}'] [data-field=active_projects]") == (
        str(m["active_projects"]))
    page.shot("managers")

    page.panel("audit")
    page.tab.get_by_role("button", name="Verify the hash chain").click()
    verified = api(base, "/v1/audit/verify")
    page.tab.wait_for_function("document.querySelector('#verify-out').textContent"
                               ".startsWith('Chain intact')", timeout=WAIT_MS)
    assert page.field("#verify-out") == f"Chain intact: {verified['checked']} events checked"
    page.shot("audit")

    page.panel("rejections")
    assert "Rejected by the rules: " in page.field("#body")
    page.shot("rejections")

    page.panel("status")
    names = [p["name"] for p in api(base, "/v1/projections")["items"]]
    assert page.tab.locator("#status-table tbody tr").count() == len(names)
    page.shot("status")


def test_the_time_control_shows_older_numbers_and_the_url_keeps_them(page: Page) -> None:
    base = page.base
    page.sign_in(ALL)
    page.tab.wait_for_selector("[data-portfolio]", timeout=WAIT_MS)
    slider = page.tab.get_by_label("As the service knew it (as_of, recording time)")
    store = int(slider.get_attribute("max") or 0)
    middle = store // 2
    slider.fill(str(middle))
    page.tab.wait_for_function("location.hash.includes('as_of=')", timeout=WAIT_MS)
    instant = api(base, "/v1/audit", cursor=str(middle - 1), limit="1")["items"][0]["recorded_at"]
    page.tab.wait_for_function(
        "(t) => document.querySelector('#asof-out').textContent.includes(t)", arg=instant,
        timeout=WAIT_MS)
    live = api(base, "/v1/portfolios")["items"]
    moved = False
    for view in live:
        pid = view["portfolio_id"]
        old = httpx.get(f"{base}/v1/portfolios/{pid}", params={"as_of": instant},
                        headers={"Authorization": f"Bearer {ALL}"}, timeout=10).json()
        page.tab.wait_for_function(
            "([pid, v]) => { const e = document.querySelector(`[data-portfolio='${pid}'] "
            "[data-field=actual_cost]`); return e && e.textContent === v; }",
            arg=[pid, grouped(old["actual_cost"])], timeout=WAIT_MS)
        assert card_numbers(page, pid) == expected_numbers(old)
        moved = moved or old["actual_cost"] != view["actual_cost"]
    assert moved, "the middle of the history should show other numbers than now"
    page.shot("portfolios-as-of")

    # The project table is at that instant too (the list route takes as_of), not today's.
    then = api(base, "/v1/projects", limit="25", as_of=instant)["items"]
    now = api(base, "/v1/projects", limit="25")["items"]
    assert [p["actual_cost"] for p in then] != [p["actual_cost"] for p in now]
    page.panel("projects")
    page.tab.wait_for_function(
        "(ids) => [...document.querySelectorAll('#project-table tbody tr')]"
        ".map((r) => r.dataset.project).join() === ids",
        arg=",".join(p["project_id"] for p in then), timeout=WAIT_MS)
    for p in then[:5]:
        assert page.field(f"[data-project='{p['project_id']}'] [data-field=actual_cost]") == (
            grouped(p["actual_cost"]))
    page.shot("projects-as-of")
    page.panel("portfolios")

    # The URL is the view: opened again (same tab session), it shows the same instant.
    shared = page.tab.url
    assert re.search(r"as_of=[^&]+", shared) and ALL not in shared
    page.tab.goto(f"{base}/")
    page.tab.goto(shared)
    page.tab.wait_for_selector("body[data-ready]", state="attached", timeout=WAIT_MS)
    pid = live[0]["portfolio_id"]
    old = api(base, f"/v1/portfolios/{pid}", as_of=instant)
    page.tab.wait_for_function(
        "([pid, v]) => { const e = document.querySelector(`[data-portfolio='${pid}'] "
        "[data-field=actual_cost]`); return e && e.textContent === v; }",
        arg=[pid, grouped(old["actual_cost"])], timeout=WAIT_MS)
    assert page.tab.locator("#asof").input_value() == str(middle)
    # Keyboard: End goes back to the live views.
    page.tab.locator("#asof").focus()
    page.tab.keyboard.press("End")
    page.tab.wait_for_function("!location.hash.includes('as_of=')", timeout=WAIT_MS)
    assert page.field("#asof-out") == "live"


def test_a_new_event_changes_the_panel_without_a_reload(page: Page) -> None:
    base = page.base
    page.sign_in(ALL)
    page.tab.wait_for_selector("[data-portfolio]", timeout=WAIT_MS)
    page.tab.wait_for_function("document.querySelector('#livestate').textContent"
                               ".startsWith('live: views at')", timeout=WAIT_MS)
    page.tab.evaluate("window.notReloaded = true")
    project = api(base, "/v1/projects", state="active", limit="1")["items"][0]
    pid = project["portfolio_id"]
    currency = api(base, f"/v1/portfolios/{pid}")["currency"]
    event = {"specversion": "1.0", "id": "browser-cost-1", "source": "urn:test:dashboard",
             "type": "pmo.project.cost_recorded", "subject": project["project_id"],
             "time": "2026-11-01T10:00:00Z", "actor": "e2e",
             "data": {"amount": "12345.67", "currency": currency, "incurred_on": "2026-11-01",
                      "category": "labour", "reference": "INV-E2E"}}
    stored = httpx.post(f"{base}/v1/events", content=orjson.dumps(event), timeout=10,
                        headers={"Authorization": f"Bearer {ALL}",
                                 "Content-Type": "application/cloudevents+json"})
    assert stored.status_code == 201, stored.text
    after = api(base, f"/v1/portfolios/{pid}")["actual_cost"]
    page.tab.wait_for_function(
        "([pid, v]) => document.querySelector(`[data-portfolio='${pid}'] "
        "[data-field=actual_cost]`).textContent === v", arg=[pid, grouped(after)],
        timeout=5_000)
    assert page.tab.evaluate("window.notReloaded") is True
    page.shot("portfolios-live")


def test_a_viewer_key_sees_no_auditor_panel_and_no_as_of(page: Page) -> None:
    page.sign_in(VIEW)
    page.tab.wait_for_selector("[data-portfolio]", timeout=WAIT_MS)
    assert page.tab.locator("nav button[data-panel=audit]").is_hidden()
    assert page.tab.locator("nav button[data-panel=rejections]").is_hidden()
    assert page.tab.locator("#asof-box").is_hidden()
    # valid_at is offered exactly when the API says it takes it (its OpenAPI document).
    spec = httpx.get(f"{page.base}/openapi.json", timeout=10).json()
    takes = any(p["name"] == "valid_at" for p in
                spec["paths"]["/v1/portfolios/{portfolio_id}"]["get"].get("parameters", []))
    assert page.tab.locator("#validat-box").is_visible() == takes
    page.panel("project")
    page.tab.get_by_label("Project id").fill("PRJ-001")
    page.tab.get_by_role("button", name="Show").click()
    page.tab.wait_for_selector("article.project", timeout=WAIT_MS)
    assert "History and status reports need the auditor role." in page.field("article.project")
    # Colours carry words too: every health badge says its colour.
    badges = page.tab.locator(".badge").all_inner_texts()
    assert badges and all(b in {"green", "amber", "red", "unknown"} for b in badges)
    page.tab.get_by_role("button", name="Sign out").click()
    assert page.tab.evaluate("sessionStorage.length") == 0

"""The dashboard page (/dashboard) in headless Chromium against the real API: log in through the form, pick a
period, and the charts hold what `cityStats` answers (and what was seeded); a report downloads; at phone size
the page is one column without horizontal scroll; an org admin sees only their organization; a volunteer, a
wrong password and an expired login are told so. Plus the page's headers, files and GraphQL operations.

The browser is Debian's `chromium` with its `chromedriver`, driven by Selenium (no download at run time). When
they are absent the browser tests are skipped, unless YOUTHLINK_TEST_REQUIRE_BROWSER=1 (CI), which fails them.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from graphql import FieldNode, OperationDefinitionNode, SelectionSetNode, parse, validate
from openpyxl import load_workbook
from sqlalchemy import select, update

from tests import factories
from tests.conftest import GraphQL, operation
from tests.test_hours_ledger import a_task, approve, credit, served
from tests.test_stats import refreshed
from youthlink.db.models import Project, Task, Volunteer
from youthlink.db.models.enums import Role
from youthlink.domain import accounts
from youthlink.domain.actor import Actor
from youthlink.domain.inputs import RegisterVolunteer
from youthlink.graphql.schema import build_schema

STATIC = Path(__file__).resolve().parent.parent / "youthlink" / "api" / "static"
PAGE_OPERATIONS = STATIC / "dashboard" / "overview.graphql"
CITY = ZoneInfo("Asia/Shanghai")
ORG_A, ORG_B = "温岭市社会治理志愿者联盟", "温岭市医疗青年联合会"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


# ---- without a browser: the page's operations, headers and files ----

def _fields(selection: SelectionSetNode | None, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for node in selection.selections if selection else ():
        assert isinstance(node, FieldNode)
        path = prefix + node.name.value
        out.add(path)
        out |= _fields(node.selection_set, path + ".")
    return out


def _operation(document: str, name: str) -> OperationDefinitionNode:
    for definition in parse(document).definitions:
        if isinstance(definition, OperationDefinitionNode) and definition.name and definition.name.value == name:
            return definition
    raise KeyError(name)


def test_the_pages_operations_validate_and_ask_for_everything_the_dashboard_contract_does() -> None:
    # given the operations the page sends, and the contract's CityOverview
    page = PAGE_OPERATIONS.read_text()

    # then they validate against the schema
    errors = validate(build_schema()._schema, parse(page))
    assert errors == [], [e.message for e in errors]
    # and the page's overview asks for every field CityOverview asks for (and the headline rates)
    ours = _fields(_operation(page, "DashboardOverview").selection_set)
    contract = _fields(_operation(operation("CityOverview"), "CityOverview").selection_set)
    assert contract <= ours, contract - ours
    assert {"cityStats.hoursPerVolunteer", "cityStats.noShowRate"} <= ours


async def test_the_page_has_a_strict_policy_no_inline_script_and_serves_echarts_from_the_package(
    http: httpx.AsyncClient,
) -> None:
    # when the page is fetched
    page = await http.get("/dashboard")

    # then it is HTML under a policy that allows scripts from this origin only, and has no inline script
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "default-src 'none'" in policy and "unsafe-eval" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    for tag in page.text.split("<script")[1:]:
        assert tag.split(">", 1)[0].strip().startswith('src="/static/'), tag[:80]
        assert tag.split(">", 1)[1].startswith("</script>")
    # and every file it names is served, ECharts 5 from the package with its licence
    for path in ("/static/vendor/echarts/echarts.min.js", "/static/dashboard/dashboard.js",
                 "/static/dashboard/dashboard.css", "/static/dashboard/overview.graphql",
                 "/static/vendor/echarts/LICENSE", "/static/vendor/echarts/NOTICE"):
        response = await http.get(path)
        assert response.status_code == 200, path
    echarts = await http.get("/static/vendor/echarts/echarts.min.js")
    assert "javascript" in echarts.headers["content-type"] and 'version="5.6.0"' in echarts.text


async def test_the_viewer_says_whose_figures_the_login_sees(gql: GraphQL, db: Any, clean: None) -> None:
    # given a city admin, an org admin and a volunteer
    _, city = await factories.admin(db, Role.CITY_ADMIN, None)
    _, org = await factories.admin(db, Role.ORG_ADMIN, ORG_A)
    _, volunteer = await factories.volunteer(db)
    query = "query { viewer { statsAudience } }"

    # then each is told whose statistics it gets (the page lets CITY and ORGANIZATION in)
    assert [(await gql(query, token=token))["data"]["viewer"]["statsAudience"] for token in (city, org, volunteer)
            ] == ["CITY", "ORGANIZATION", "VOLUNTEER"]


# ---- in the browser ----

def _find(candidates: tuple[str, ...], name: str) -> str | None:
    for path in (*candidates, shutil.which(name) or ""):
        if path and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    """Chromium and chromedriver, or a skip (a failure when YOUTHLINK_TEST_REQUIRE_BROWSER=1)."""
    required = os.environ.get("YOUTHLINK_TEST_REQUIRE_BROWSER") == "1"
    chromium = _find(CHROMIUM_CANDIDATES, "chromium")
    driver = _find(CHROMEDRIVER_CANDIDATES, "chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        reason = "selenium is not installed (pip install -e '.[test]')"
    else:
        reason = "" if chromium and driver else (
            "headless Chromium is not installed: apt-get install chromium chromium-driver "
            f"(found chromium={chromium}, chromedriver={driver})")
    if reason:
        if required:
            pytest.fail(f"YOUTHLINK_TEST_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    assert chromium and driver
    return chromium, driver


@pytest.fixture
def browser(browser_paths: tuple[str, str], tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = browser_paths
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=zh-CN",
                 "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Service(executable_path=...): Selenium Manager is never asked to download a driver.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()


async def _account_volunteer(db: Any, created: datetime) -> tuple[uuid.UUID, str]:
    phone = factories.next_phone()
    async with db.unit_of_work() as session:
        _, volunteer = await accounts.register_volunteer(session, RegisterVolunteer(
            name="志愿者", phone=phone, password=factories.PASSWORD, birth_date=date(2000, 1, 1),
            skills=[], location={"lat": 28.26, "lng": 121.61}))
        await session.flush()
        await session.execute(update(Volunteer).where(Volunteer.id == volunteer.id).values(created_at=created))
    return volunteer.id, phone


async def _admin(db: Any, role: Role, org: str | None) -> tuple[Actor, str]:
    phone = factories.next_phone()
    org_id = (await factories.organization(db, org)).id if org else None
    async with db.unit_of_work() as session:
        account = await accounts.create_admin(session, role=role, phone=phone, password=factories.PASSWORD,
                                              name="市级管理员" if org is None else "组织管理员",
                                              organization_id=org_id)
    async with db.read() as session:
        return await accounts.load_actor(session, account.id), phone


async def seed(db: Any) -> dict[str, Any]:
    """Three volunteers (registered in January 2025) with approved service in 2025 for two organizations in two
    towns on two projects: March 3 h + 2 h (org A), May 5 h and June 5 x 22 h (org B; a record is at most 24 h).
    The 110 h make a 1-star volunteer (113 h)."""
    city, city_phone = await _admin(db, Role.CITY_ADMIN, None)
    _, org_phone = await _admin(db, Role.ORG_ADMIN, ORG_A)
    org_a, org_b = await factories.organization(db, ORG_A), await factories.organization(db, ORG_B)
    shitang, zeguo = await factories.town(db, "shitang"), await factories.town(db, "zeguo")
    async with db.read() as session:
        p1, p2 = (await session.scalars(select(Project).order_by(Project.name).limit(2))).all()
    january = datetime(2025, 1, 5, 10, tzinfo=CITY)
    v1, _ = await _account_volunteer(db, january)
    v2, _ = await _account_volunteer(db, january)
    v3, _ = await _account_volunteer(db, january)
    _, volunteer_phone = await _account_volunteer(db, datetime.now(CITY))
    plan = [
        (v1, datetime(2025, 3, 10, 9, tzinfo=CITY), 3, org_a, shitang, p1),
        (v2, datetime(2025, 3, 15, 9, tzinfo=CITY), 2, org_a, zeguo, p2),
        (v3, datetime(2025, 5, 20, 9, tzinfo=CITY), 5, org_b, zeguo, p1),
    ] + [(v1, datetime(2025, 6, day, 0, tzinfo=CITY), 22, org_b, shitang, p2) for day in range(2, 7)]
    records, tasks = [], []
    for volunteer_id, start, hours_long, org, town, project in plan:
        task = await a_task(db, city, start, hours_long, organization_id=org.id, town_id=town.id,
                            project_id=project.id, title=f"{project.name} · {town.name}")
        record = await credit(db, await served(db, task, volunteer_id, task.starts_at, task.ends_at))
        assert record is not None
        records.append(record.id)
        tasks.append(task.id)
    async with db.unit_of_work() as session:  # each served volunteer held one slot (`served` skips the sign-up)
        await session.execute(update(Task).where(Task.id.in_(tasks)).values(filled_slots=1))
    await approve(db, city, *records)
    await refreshed(db)
    return {"city_phone": city_phone, "org_phone": org_phone, "volunteer_phone": volunteer_phone,
            "org_a": org_a, "org_b": org_b, "shitang": shitang, "zeguo": zeguo, "p1": p1, "p2": p2}


class Page:
    """The dashboard as a user drives it."""

    def __init__(self, driver: Any, base: str) -> None:
        self.driver, self.base = driver, base

    def wait(self, condition: Any, timeout: float = 30) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def el(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def state(self) -> str:
        return str(self.js("return document.body.getAttribute('data-state') || ''"))

    def open(self) -> None:
        self.driver.get(self.base + "/dashboard")
        self.wait(lambda d: self.state() in ("login", "login-error", "ready", "error"))

    def login(self, phone: str, password: str = factories.PASSWORD) -> str:
        self.wait(lambda d: self.el("login-view").is_displayed())
        self.el("phone").clear()
        self.el("phone").send_keys(phone)
        self.el("password").clear()
        self.el("password").send_keys(password)
        self.el("login-submit").click()
        return str(self.wait(lambda d: self.state() if self.state() in ("ready", "login-error", "error") else None))

    def pick(self, kind: str, **values: str) -> None:
        """Choose a period in the picker and ask for it; waits for the charts."""
        from selenium.webdriver.support.ui import Select

        Select(self.el("period-kind")).select_by_value(kind)
        for field, value in values.items():
            element = self.el(f"period-{field}")
            if element.tag_name == "select":
                Select(element).select_by_value(value)
            elif element.get_attribute("type") == "number":
                element.clear()
                element.send_keys(value)
            else:  # month and date inputs: typing into them depends on the locale; set the value as a picker would
                self.js("arguments[0].value = arguments[1];"
                        "arguments[0].dispatchEvent(new Event('change', {bubbles: true}))", element, value)
        self.el("period-apply").click()  # the page says "loading" at once, then "ready" or "error"
        self.wait(lambda d: self.state() in ("ready", "error"))
        assert self.state() == "ready", self.el("overview-error").text

    def series(self, chart_id: str) -> dict[str, Any]:
        """What the chart plotted, read back from ECharts itself, and the figures the page says it plotted."""
        return dict(self.js("""
            var el = document.getElementById(arguments[0]);
            var chart = echarts.getInstanceByDom(el);
            if (!chart) { return null; }
            var option = chart.getOption();
            var axis = function (a) { return a && a.length ? a[0].data || null : null; };
            return {series: option.series.map(function (s) { return s.data; }), x: axis(option.xAxis),
                    y: axis(option.yAxis), figures: JSON.parse(el.getAttribute('data-figures'))};
        """, chart_id))

    def figure(self, name: str) -> str:
        return str(self.js(f"return document.querySelector('[data-figure=\"{name}\"]').textContent"))

    def screenshot(self, path: Path, width: int, height: int, mobile: bool) -> None:
        """The whole page at this viewport size, as a PNG."""
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        time.sleep(0.3)  # the charts resize on the resize event
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(shot["data"]))

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"
                and "favicon.ico" not in e["message"]]


def _by_name(names: list[str], hours: list[float]) -> dict[str, float]:
    return dict(zip(names, hours, strict=True))


async def test_the_dashboard_in_headless_chromium(browser: Any, api: str, gql: GraphQL, db: Any, tmp_path: Path,
                                                  clean: None) -> None:
    started = time.monotonic()
    # given approved service in 2025 (seed), a city admin, an org admin of org A and a volunteer
    w = await seed(db)
    page = Page(browser, api)

    # when someone opens the page, then it asks for a login; a wrong password is told so
    page.open()
    assert page.state() == "login"
    assert page.login(w["city_phone"], "not the password") == "login-error"
    assert "手机号或密码错误" in page.el("login-error").text

    # when the city admin logs in through the form and picks the year 2025
    assert page.login(w["city_phone"]) == "ready", page.el("overview-error").text
    page.pick("year", year="2025")

    # then the charts hold what cityStats answers for 2025, and what was seeded
    token = page.js("return sessionStorage.getItem('youthlink.dashboard.token')")
    assert token
    year = {"from": "2025-01-01", "to": "2025-12-31"}
    stats = (await gql(_page_operation("DashboardOverview"), year, token=token))["data"]["cityStats"]
    monthly = page.series("chart-monthly")
    assert monthly["x"] == [m["month"] for m in stats["monthly"]] == [f"2025-{m:02d}" for m in range(1, 13)]
    assert monthly["series"][0] == [m["hours"] for m in stats["monthly"]] == monthly["figures"]["hours"]
    assert monthly["series"][0] == [0, 0, 5, 0, 5, 110, 0, 0, 0, 0, 0, 0]
    assert monthly["series"][1] == [m["activeVolunteers"] for m in stats["monthly"]]
    towns = page.series("chart-towns")
    assert _by_name(towns["y"], towns["series"][0]) == {b["town"]["name"]: b["hours"] for b in stats["byTown"]}
    assert _by_name(towns["y"], towns["series"][0]) == {w["shitang"].name: 113, w["zeguo"].name: 7}
    orgs = page.series("chart-organizations")
    plotted = _by_name(orgs["y"], orgs["series"][0])
    assert plotted == {b["organization"]["name"]: b["hours"] for b in stats["byOrganization"]}
    assert plotted[ORG_A] == 5 and plotted[ORG_B] == 115
    stars = page.series("chart-stars")
    assert stars["series"][0] == [s["volunteers"] for s in stats["starLevels"]] == [2, 1, 0, 0, 0, 0]
    assert stars["x"][:2] == ["未达星级", "一星"]
    projects = page.series("chart-projects")
    assert _by_name(projects["y"], projects["series"][0]) == {
        b["project"]["name"]: b["hours"] for b in stats["byProject"][:10]} == {w["p1"].name: 8, w["p2"].name: 112}
    gauge = page.series("chart-fill-rate")
    assert gauge["series"][0][0]["value"] == round(stats["fillRate"] * 100, 1) == 10.0  # 8 of 80 slots
    assert gauge["figures"] == {"fillRate": stats["fillRate"], "slotsFilled": stats["slotsFilled"],
                                "slotsOffered": stats["slotsOffered"]}
    # and the headline figures are the API's
    assert page.figure("totalHours") == "120" and page.figure("registeredVolunteers") == "3"
    assert page.figure("activeVolunteers") == str(stats["activeVolunteers"]) == "3"
    assert page.figure("hoursPerVolunteer") == "40"
    # and a year has no report: the buttons say to pick a month or a quarter
    assert not page.el("download-xlsx").is_enabled() and "按月或按季度" in page.el("download-hint").text

    # when a quarter is picked, the figures follow (and a quarter has a report)
    page.pick("quarter", year="2025", quarter="1")
    assert page.series("chart-monthly")["series"][0] == [0, 0, 5]
    assert page.el("download-xlsx").is_enabled()

    # when the city admin picks March 2025 and downloads its report
    page.pick("month", month="2025-03")
    assert page.series("chart-monthly")["series"][0] == [5]
    page.el("download-xlsx").click()
    saved = tmp_path / "downloads" / "youthlink-report-2025-03.xlsx"
    page.wait(lambda d: saved.exists() and saved.stat().st_size > 0, timeout=30)
    assert page.js("return document.body.getAttribute('data-last-download')") == "200 2025-03.xlsx"
    book = load_workbook(io.BytesIO(saved.read_bytes()))
    overview = {row[0]: row[1] for row in book["概览"].iter_rows(min_row=2, values_only=True)}
    assert overview["服务时长（小时）"] == 5.0 and overview["统计范围"] == "全市"
    page.el("download-csv").click()
    page.wait(lambda d: (tmp_path / "downloads" / "youthlink-report-2025-03.csv").exists())

    # and a custom period (from the ledger, not the rollups) works as well
    page.pick("custom", **{"from": "2025-05-01", "to": "2025-06-30"})
    assert page.series("chart-monthly")["series"][0] == [5, 110]

    # and the page looks right on a desktop and on a phone (390 x 844): one column, no horizontal scroll
    page.pick("year", year="2025")
    desktop = tmp_path / "dashboard-desktop.png"
    page.screenshot(desktop, 1280, 1000, mobile=False)
    assert page.js("return document.documentElement.scrollWidth <= window.innerWidth")
    layout = page.js("""var a = document.getElementById('chart-towns').getBoundingClientRect(),
                        b = document.getElementById('chart-projects').getBoundingClientRect();
                        return [a.left, a.top, b.left, b.top]""")
    assert layout[1] == layout[3] and layout[0] < layout[2], layout  # side by side
    phone = tmp_path / "dashboard-phone.png"
    page.screenshot(phone, 390, 844, mobile=True)
    assert page.js("return document.documentElement.scrollWidth <= window.innerWidth"), page.js(
        "return [document.documentElement.scrollWidth, window.innerWidth]")
    layout = page.js("""var a = document.getElementById('chart-towns').getBoundingClientRect(),
                        b = document.getElementById('chart-projects').getBoundingClientRect();
                        return [a.left, a.top, b.left, b.top, a.width, window.innerWidth]""")
    assert layout[0] == layout[2] and layout[1] < layout[3] and layout[4] <= layout[5], layout  # stacked
    assert page.js("return echarts.getInstanceByDom(document.getElementById('chart-towns')).getWidth()") <= 390
    assert desktop.stat().st_size > 10_000 and phone.stat().st_size > 10_000
    print(f"\nscreenshots: {desktop} {phone}")
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    # when the city admin logs out and the org admin of org A logs in
    page.el("logout").click()
    page.wait(lambda d: page.el("login-view").is_displayed())
    assert page.login(w["org_phone"]) == "ready"
    page.pick("year", year="2025")

    # then only org A's figures (with its children) are shown
    org_token = page.js("return sessionStorage.getItem('youthlink.dashboard.token')")
    theirs = (await gql(_page_operation("DashboardOverview"), year, token=org_token))["data"]["cityStats"]
    orgs = page.series("chart-organizations")
    assert _by_name(orgs["y"], orgs["series"][0]) == {b["organization"]["name"]: b["hours"]
                                                      for b in theirs["byOrganization"]}
    assert ORG_B not in orgs["y"] and _by_name(orgs["y"], orgs["series"][0])[ORG_A] == 5
    assert page.series("chart-monthly")["series"][0] == [0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    towns = page.series("chart-towns")
    assert _by_name(towns["y"], towns["series"][0]) == {w["shitang"].name: 3, w["zeguo"].name: 2}
    assert page.figure("totalHours") == "5" and "本组织" in page.el("viewer-name").text

    # when the login no longer verifies (the city admin's token, revoked by the logout; or one that expired),
    # the next load goes back to the login form and says so
    for stale in (token, "expired.or.malformed"):
        page.js("sessionStorage.setItem('youthlink.dashboard.token', arguments[0])", stale)
        page.open()
        assert page.state() == "login-error" and "登录已失效" in page.el("login-error").text

    # when a volunteer logs in, they are told the dashboard is for admins, and no token is kept
    assert page.login(w["volunteer_phone"]) == "login-error"
    assert "仅供市级管理员和组织管理员使用" in page.el("login-error").text
    assert page.js("return sessionStorage.getItem('youthlink.dashboard.token')") is None

    # and nothing went wrong in the browser (no script error, no policy violation)
    assert page.console_errors() == []
    print(f"browser test took {time.monotonic() - started:.1f} s")


def _page_operation(name: str) -> str:
    from graphql import print_ast

    return print_ast(_operation(PAGE_OPERATIONS.read_text(), name))


def test_every_operation_of_the_page_starts_a_line() -> None:
    # the page splits the file before each line that starts with `query ` or `mutation `
    text = PAGE_OPERATIONS.read_text()
    names = [line.split()[1].split("(")[0] for line in text.splitlines() if line.startswith(("query ", "mutation "))]
    assert sorted(names) == sorted(d.name.value for d in parse(text).definitions
                                   if isinstance(d, OperationDefinitionNode) and d.name)

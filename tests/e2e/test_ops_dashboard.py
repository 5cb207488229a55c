"""The operator dashboard in headless Chromium (Debian's, driven by Playwright) against a
running system: it loads with every request to another host refused, shows the same lag and
dead letters as the CLI, and its Replay button brings a dead-lettered command back to be
applied.

The dead letter comes from a real consumer: one that predates the ``task.create`` command
(its decoder removed, as in a consumer older than the producer) dead-letters a create; after
the upgrade (a current consumer), replaying it from the page applies it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page, Route, async_playwright
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskstream.infra.dead_letters import read_dead_letters
from taskstream.settings import Settings
from tests.integration.consumers.stream_support import (
    Lane,
    as_message,
    consumer_process,
    create_command,
    produce,
    seed_team,
    wait_for,
)
from tests.integration.http_support import ApiServer, relaxed_limits
from tests.integration.ops.support import register_admin
from tests.processes import ChildProcess

pytestmark = [pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_CHROMIUM = "apt-get update && apt-get install -y chromium chromium-driver"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A consumer older than the task.create command: it dead-letters every create.
OLD_CONSUMER = (
    "from taskstream import messages\n"
    "messages._payload_decoders.pop(('task.create', 1))\n"
    "from taskstream.cli import main\n"
    "main(['consume'], prog_name='taskstream')\n"
)


async def _dead_letters(lane: Lane, count: int, timeout_s: float = 60) -> list[str]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        letters = await read_dead_letters(lane.kafka)
        if len(letters) >= count:
            return [d.id for d in letters]
        assert asyncio.get_running_loop().time() < deadline, "nothing was dead-lettered"
        await asyncio.sleep(0.5)


async def _until(page: Page, predicate: str, arg: object = None, timeout_s: float = 30) -> None:
    """Poll ``predicate`` (a JS function) in the page. Not ``wait_for_function``: its polling
    evaluates strings, which the page's Content-Security-Policy (rightly) refuses."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await page.evaluate(predicate, arg):
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {predicate}"
        await asyncio.sleep(0.2)


def _cli_lag(lane: Lane) -> list[tuple[int, str, int, int]]:
    """(partition, committed, end, lag) rows of the applier group (the first section of
    `taskstream consumers lag`; a blank line separates the groups)."""
    rows = []
    for line in lane.cli("consumers", "lag").splitlines()[2:]:
        parts = line.split()
        if not parts:
            break
        if parts[0].isdigit():
            rows.append((int(parts[0]), parts[1], int(parts[2]), int(parts[3])))
    return rows


async def test_the_dashboard_shows_the_system_and_replays_a_dead_letter(
    settings: Settings,
    settings_env: dict[str, str],
    database: str,
    session_factory: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing: run `{INSTALL_CHROMIUM}` (make test does it)")
    lane = await Lane.create(settings, settings_env, database)
    team = await seed_team(lane.dsn)
    server = ApiServer(relaxed_limits(settings.model_copy(update={"kafka": lane.kafka})))
    processes: list[ChildProcess] = []
    try:
        server.start()
        old = ChildProcess([sys.executable, "-c", OLD_CONSUMER], lane.env, tmp_path / "old.log")
        processes.append(old.start())
        command = create_command(team, "dead-lettered, then replayed")
        await produce(
            lane.kafka.bootstrap_servers, lane.kafka.task_commands_topic, [as_message(command)]
        )
        [letter_id] = await _dead_letters(lane, 1)
        assert old.terminate() == 0
        processes.append(consumer_process(lane.env, tmp_path / "consumer.log").start())

        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            admin = await register_admin(http, session_factory)
            ticket = (await http.post("/ops/tickets", headers=admin.headers)).json()

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            context = await browser.new_context(viewport={"width": 1400, "height": 1200})
            elsewhere: list[str] = []

            async def local_only(route: Route) -> None:
                if urlsplit(route.request.url).hostname == "127.0.0.1":
                    await route.continue_()
                else:
                    elsewhere.append(route.request.url)
                    await route.abort()

            await context.route("**/*", local_only)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(server.url + ticket["url"])
            await _until(page, "() => Number(document.body.dataset.refreshed || 0) >= 2")

            # the same numbers as the CLI
            assert await page.text_content("[data-testid=dlq-count]") == "1"
            assert lane.cli("dlq", "list").strip().endswith("1 dead letter(s)")
            cli_rows = _cli_lag(lane)
            shown = await page.eval_on_selector_all(
                "#partitions tr",
                "rows => rows.map(r => [...r.cells].map(c => c.textContent))",
            )
            assert [
                (int(p), "-" if c == "\u2013" else c, int(e), int(lag)) for p, c, e, lag in shown
            ] == cli_rows
            total = sum(row[3] for row in cli_rows)
            assert await page.text_content("[data-testid=lag-total]") == str(total)
            deps = await page.eval_on_selector_all(
                "#dependencies li", "items => items.map(i => i.textContent)"
            )
            assert "rabbitmq: up" in deps
            assert "postgres: up" in deps

            # Replay from the page: the command is applied by the current consumer
            await page.click(f"button[data-replay='{letter_id}']")
            await _until(
                page,
                "id => document.getElementById('replay-status').textContent.includes(id)",
                letter_id,
            )
            await wait_for(lane.dsn, lane.settled([command.command_id], 1), 60, "replay applied")
            refreshed = int(await page.evaluate("document.body.dataset.refreshed"))
            await _until(page, "n => Number(document.body.dataset.refreshed) >= n", refreshed + 2)
            screenshot = tmp_path / "ops-dashboard.png"
            await page.screenshot(path=str(screenshot), full_page=True)
            print(f"dashboard screenshot: {screenshot}")
            await browser.close()

        assert elsewhere == []
        assert errors == []
        async with session_factory() as session:
            status = await session.scalar(
                text("SELECT status::text FROM command_statuses WHERE command_id = :id"),
                {"id": command.command_id},
            )
        assert status == "applied"
    finally:
        for process in processes:
            process.stop()
        server.stop()

"""Benchmark of the annotation app: N simulated annotators submitting through the HTTP API at once.

    .venv/bin/python benchmarks/annotate_bench.py                 # 20 annotators, 60 s, back to back
    .venv/bin/python benchmarks/annotate_bench.py --think 2       # 20 annotators reading 2 s on average
    .venv/bin/python benchmarks/annotate_bench.py --seconds 10    # a shorter run

The server runs in its own process (`workbench annotate serve`); each annotator is a `gradio_client`
session that asks for its item, judges it with the task world's verifier (simulated annotator rules)
and submits. Reported: submissions/s, p50/p95 submit latency, and a check that every acknowledged
submission is stored exactly once and nothing unacknowledged is. The baseline is the same number of
submissions by the same number of threads through the store API directly, in this run.

At the same time ``--browsers`` people annotate in Debian's Chromium (keys A and 2, then the Submit
button, with the same think time): reported are the time from opening the page (logged in) to the
first item shown, and from clicking Submit to the next item shown, p50/p95. 0 browsers skips this.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from preference_ui.items import validate_item  # noqa: E402
from preference_ui.simulated import judge  # noqa: E402
from preference_ui.store import Store  # noqa: E402
from workbench.tasks import Task, generate  # noqa: E402

PASSWORD = "bench-password"


def make_store(path: Path, annotators: int, n_items: int, overlap: int, browsers: int = 0) -> Store:
    """A store with ``annotators`` (and ``browsers``) accounts and math items carrying their task."""
    store = Store(path)
    for k in range(annotators):
        store.add_user(f"sim{k:02d}", PASSWORD)
    for k in range(browsers):
        store.add_user(f"web{k:02d}", PASSWORD)
    items = []
    for k, task in enumerate(generate("math", n_items, seed=11)):
        wrong = f"Answer: {int(task.reference) + 1 + k % 7}"
        items.append(validate_item({"id": f"b{k:05d}", "prompt": task.prompt, "responses": [task.solution, wrong],
                                    "models": ["good", "bad"], "round": 1, "meta": {"task": task.to_dict()}}, "bench"))
    store.import_items(items, overlap=overlap)
    return store


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, in the same unit."""
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1] if len(values) > 1 else values[0]


def http_run(url: str, store: Store, annotators: int, seconds: float, think: float) -> tuple[list[float], dict]:
    """Simulated annotators through gradio_client until the deadline: (latencies, acknowledged per user)."""
    from gradio_client import Client

    latencies: list[float] = []
    acked: dict[str, list[str]] = {}
    errors: list[str] = []
    start = threading.Barrier(annotators)
    deadline = [0.0]

    def annotator(user: str) -> None:
        client = Client(url, auth=(user, PASSWORD), verbose=False)
        rng = random.Random(user)
        item, _, left, right, *_ = client.predict(api_name="/current")
        start.wait()
        deadline[0] = deadline[0] or time.time() + seconds
        acked[user] = []
        while item and time.time() < deadline[0]:
            time.sleep(rng.uniform(0, 2 * think))  # reading time; 0 is a closed-loop stress test
            verdict = judge(Task.from_dict(store.get_item(item).meta["task"]), left, right, rng, 0.1, 0.05)
            t0 = time.perf_counter()
            try:
                result = client.predict(item, "A" if verdict.winner == "first" else "B", verdict.level,
                                        verdict.edited, api_name="/submit")
            except Exception as exc:  # an error is a failed, unacknowledged write: reported below
                errors.append(f"{user}: {exc}")
                break
            latencies.append(time.perf_counter() - t0)
            acked[user].append(item)
            item, _, left, right, *_ = result

    threads = [threading.Thread(target=annotator, args=(f"sim{k:02d}",)) for k in range(annotators)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(f"{len(errors)} submit errors, first: {errors[0]}")
    return latencies, acked


def browser_run(url: str, users: list[str], seconds: float, think: float) -> tuple[list[float], list[float]]:
    """People in Chromium until the deadline: (page load to first item, submit to next item) in seconds."""
    import asyncio

    from playwright.async_api import async_playwright

    loads: list[float] = []
    submits: list[float] = []
    item_js = "prev => { const e = document.querySelector('#wb-item input'); return e && e.value && e.value !== prev; }"

    async def person(browser, user: str, deadline: float) -> None:
        page = await (await browser.new_context()).new_page()
        await page.goto(url)
        await page.locator("input[type=text]").fill(user)
        await page.locator("input[type=password]").fill(PASSWORD)
        await page.keyboard.press("Enter")
        await page.wait_for_function(item_js, arg="", timeout=120000)
        t0 = time.perf_counter()  # the page opened again, now with a session
        await page.reload()
        await page.wait_for_function(item_js, arg="", timeout=120000)
        loads.append(time.perf_counter() - t0)
        rng = random.Random(user)
        while time.time() < deadline:
            item = await page.locator("#wb-item input").input_value()
            await asyncio.sleep(rng.uniform(0, 2 * think))
            await page.keyboard.press("a")
            await page.keyboard.press("2")
            await page.wait_for_function("() => !document.querySelector('#wb-submit').disabled", timeout=120000)
            t0 = time.perf_counter()
            await page.locator("#wb-submit").click()
            await page.wait_for_function(item_js, arg=item, timeout=120000)
            submits.append(time.perf_counter() - t0)

    async def run() -> None:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            deadline = time.time() + seconds
            await asyncio.gather(*(person(browser, user, deadline) for user in users))
            await browser.close()

    asyncio.run(run())
    return loads, submits


def direct_run(path: Path, annotators: int, total: int) -> tuple[list[float], float]:
    """The baseline: ``total`` claim+submit cycles by ``annotators`` threads through the store API."""
    store = Store(path)
    latencies: list[float] = []
    left = [total]
    lock = threading.Lock()

    def worker(user: str) -> None:
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            claim = store.claim_next(user)
            if claim is None:
                return
            t0 = time.perf_counter()
            store.submit(user, claim.item_id, "A", "better")
            latencies.append(time.perf_counter() - t0)

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(f"sim{k:02d}",)) for k in range(annotators)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.time() - t0


def check_writes(store: Store, acked: dict[str, list[str]]) -> tuple[int, int, int]:
    """(lost, duplicated, unacknowledged) submissions of the API annotators, comparing acknowledgements with the store."""
    stored = [(r.annotator, r.meta["item_id"]) for r in store.export() if r.annotator in acked]
    acks = {(user, item) for user, items in acked.items() for item in items}
    submits = sum(a["action"] == "submit" and a["user"] in acked for a in store.audit_log())
    return len(acks - set(stored)), len(stored) - len(set(stored)) + (submits - len(stored)), len(set(stored) - acks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the HTTP run")
    parser.add_argument("--annotators", type=int, default=20, help="concurrent simulated annotators")
    parser.add_argument("--items", type=int, default=3000, help="items imported")
    parser.add_argument("--overlap", type=int, default=2, help="annotations per item")
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean seconds an annotator reads before submitting (0: submit back to back)")
    parser.add_argument("--browsers", type=int, default=2, help="people in Chromium besides the API annotators")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="annotate_bench."))
    store = make_store(tmp / "http.sqlite", args.annotators, args.items, args.overlap, args.browsers)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "rounds.main", "annotate", "serve", "--db", str(store.path),
                               "--port", str(port), "--set", "annotation.concurrency=8"],
                              cwd=REPO, stdout=open(tmp / "server.log", "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    import httpx

    for _ in range(300):
        try:
            httpx.get(url, timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.5)
    try:
        t0 = time.time()
        browsed: dict[str, tuple[list[float], list[float]]] = {}
        def people_run() -> None:
            try:
                browsed["r"] = browser_run(url, [f"web{k:02d}" for k in range(args.browsers)], args.seconds, args.think)
            except Exception as exc:  # reported with the results; the HTTP run goes on
                browsed["error"] = exc

        people = threading.Thread(target=people_run)
        if args.browsers:
            people.start()
        http_lat, acked = http_run(url, store, args.annotators, args.seconds, args.think)
        if args.browsers:
            people.join()
        http_wall = time.time() - t0
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(30)
    lost, duplicated, unacked = check_writes(store, acked)
    n = len(http_lat)

    base_store = make_store(tmp / "direct.sqlite", args.annotators, args.items, args.overlap)
    base_lat, base_wall = direct_run(base_store.path, args.annotators, n)

    rows = [("HTTP (gradio_client -> app -> store)", n, n / args.seconds, http_lat),
            ("store API directly (baseline)", len(base_lat), len(base_lat) / base_wall, base_lat)]
    print(f"\n{args.annotators} annotators, {args.seconds:.0f} s HTTP run (wall {http_wall:.1f} s), "
          f"overlap {args.overlap}, think {args.think} s, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    print(f"{'path':<40} {'submits':>8} {'subs/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for name, count, rate, lat in rows:
        print(f"{name:<40} {count:>8} {rate:>8.1f} {1000 * percentile(lat, 0.5):>8.1f} "
              f"{1000 * percentile(lat, 0.95):>8.1f}")
    print(f"{'ratio HTTP / baseline':<40} {'':>8} {rows[0][2] / rows[1][2]:>8.3f} "
          f"{percentile(http_lat, 0.5) / percentile(base_lat, 0.5):>8.1f} "
          f"{percentile(http_lat, 0.95) / percentile(base_lat, 0.95):>8.1f}")
    p95 = 1000 * percentile(http_lat, 0.95)
    if "error" in browsed:
        print(f"\nthe browser run failed: {browsed['error']!r}")
    elif args.browsers:
        loads, clicks = browsed["r"]
        print(f"\n{'in the browser (' + str(args.browsers) + ' people)':<40} {'count':>8} {'':>8} {'p50 ms':>8} {'p95 ms':>8}")
        for name, values in (("page load to first item", loads), ("submit to next item", clicks)):
            print(f"{name:<40} {len(values):>8} {'':>8} {1000 * percentile(values, 0.5):>8.1f} "
                  f"{1000 * percentile(values, 0.95):>8.1f}")
    print(f"\nwrites: {lost} lost, {duplicated} duplicated, {unacked} stored without acknowledgement")
    print(f"target p95 <= 200 ms: {'met' if p95 <= 200 else 'NOT met'} ({p95:.0f} ms)")
    return 0 if lost == duplicated == unacked == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

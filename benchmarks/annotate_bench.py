"""Benchmark of the annotation app: N simulated annotators submitting through the HTTP API at once.

    .venv/bin/python benchmarks/annotate_bench.py                 # 20 annotators, 60 s, back to back
    .venv/bin/python benchmarks/annotate_bench.py --think 2       # 20 annotators reading 2 s on average
    .venv/bin/python benchmarks/annotate_bench.py --seconds 10    # a shorter run
    .venv/bin/python benchmarks/annotate_bench.py --think 2 --client gradio  # gradio_client annotators

The server runs in its own process (`workbench annotate serve`); each annotator is a plain HTTP client
of the app's endpoints (or, with ``--client gradio``, a `gradio_client` session, which always goes through
Gradio's queue and itself takes about a quarter of two cores at 20 clients) that asks for its item,
judges it with the task world's verifier (simulated annotator rules) and submits. Reported:
submissions/s, p50/p95 submit latency, and a check that every acknowledged submission is stored
exactly once and nothing unacknowledged is. The baseline is the same number of
submissions by the same number of threads through the store API directly, in this run.

At the same time ``--browsers`` people annotate in Debian's Chromium (keys A and 2, then the Submit
button, with the same think time): reported are the time from opening the page (logged in) to the
first item shown, and from clicking Submit to the next item shown, p50/p95. 0 browsers skips this.
A page that waits longer than ``--browser-timeout`` fails the run with what it showed and its last
requests. Also reported: the CPU seconds of the server, of this process (the API annotators) and of
Chromium, against what the machine's cores offered in the run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
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


def connect(url: str, user: str, client: str):
    """``call(api_name, *args)`` -> the endpoint's outputs, for one logged-in annotator.

    ``client`` "gradio": gradio_client (it always goes through Gradio's queue); "http": plain HTTP
    (httpx, one kept-alive connection) to the same endpoints' ``/gradio_api/run/<name>`` routes, as a
    script in any language would call them. A refusal raises with the app's reason either way.
    """
    if client == "gradio":
        from gradio_client import Client

        gradio = Client(url, auth=(user, PASSWORD), verbose=False)
        return lambda api, *args: gradio.predict(*args, api_name=f"/{api}")
    import uuid

    import httpx

    http = httpx.Client(base_url=url, timeout=120)
    http.post("login", data={"username": user, "password": PASSWORD}).raise_for_status()
    session = uuid.uuid4().hex

    def call(api: str, *args):
        reply = http.post(f"gradio_api/run/{api}", json={"data": list(args), "session_hash": session})
        body = reply.json()
        if reply.status_code != 200:
            raise RuntimeError(f"/{api}: HTTP {reply.status_code}: {body.get('error') or body}")
        return body["data"][0]  # the endpoint returns one tuple
    return call


def http_run(url: str, store: Store, annotators: int, seconds: float, think: float,
             on_start=lambda: None, client: str = "gradio") -> tuple[list[float], dict]:
    """Simulated annotators over HTTP until the deadline: (latencies, acknowledged per user).

    The run starts once every annotator is connected and has its first item; ``on_start`` is called then.
    ``client``: see :func:`connect`.
    """
    latencies: list[float] = []
    acked: dict[str, list[str]] = {}
    errors: list[str] = []
    deadline = [0.0]

    def begin() -> None:
        on_start()
        deadline[0] = time.time() + seconds
    start = threading.Barrier(annotators, action=begin)

    def annotator(user: str) -> None:
        call = connect(url, user, client)
        rng = random.Random(user)
        item, _, left, right, *_ = call("current")
        start.wait()
        acked[user] = []
        while item and time.time() < deadline[0]:
            time.sleep(rng.uniform(0, 2 * think))  # reading time; 0 is a closed-loop stress test
            verdict = judge(Task.from_dict(store.get_item(item).meta["task"]), left, right, rng, 0.1, 0.05)
            t0 = time.perf_counter()
            try:
                result = call("submit", item, "A" if verdict.winner == "first" else "B", verdict.level,
                              verdict.edited)
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


PAGE_STATE = """() => {
  const q = (sel) => document.querySelector(sel);
  return {item: q('#wb-item input')?.value, side: q('#wb-choice input:checked')?.value || null,
          level: q('#wb-level input:checked')?.value || null,
          editor: (q('#wb-editor textarea')?.value || '').slice(0, 40),
          submit_disabled: q('#wb-submit')?.disabled, status: q('#wb-status')?.innerText,
          errors: [...document.querySelectorAll('.wb-error')].map((e) => e.innerText)};
}"""


def browser_run(url: str, users: list[str], done: threading.Event, think: float,
                timeout: float = 60.0) -> tuple[list[float], list[float]]:
    """People in Chromium until ``done`` is set: (page load to first item, submit to next item) in seconds.

    A wait over ``timeout`` seconds raises, naming the person, the wait, what the page showed and its
    last requests to the app.
    """
    import asyncio
    from collections import deque

    from playwright.async_api import async_playwright

    loads: list[float] = []
    submits: list[float] = []
    item_js = "prev => { const e = document.querySelector('#wb-item input'); return e && e.value && e.value !== prev; }"

    async def person(browser, user: str) -> None:
        page = await (await browser.new_context()).new_page()
        sent: deque = deque(maxlen=12)  # the page's last calls of the app's handlers
        t_open = time.perf_counter()

        def note(request) -> None:
            if "/run/" in request.url:
                body = request.post_data_json if request.post_data else None
                data = body.get("data") if isinstance(body, dict) else None
                sent.append(f"{time.perf_counter() - t_open:.3f}s fn {body.get('fn_index') if body else '?'} "
                            f"{str(data)[:60]}")
        page.on("request", note)

        async def wait(what: str, js: str, arg=None) -> None:
            try:
                await page.wait_for_function(js, arg=arg, timeout=timeout * 1000)
            except Exception as exc:
                state = await page.evaluate(PAGE_STATE)
                raise RuntimeError(f"{user}: no {what} within {timeout:g} s ({type(exc).__name__}); the page "
                                   f"showed {state}; its last requests: {list(sent)}") from None

        await page.goto(url)
        await page.locator("input[type=text]").fill(user)
        await page.locator("input[type=password]").fill(PASSWORD)
        await page.keyboard.press("Enter")
        await wait("first item after the login", item_js, "")
        t0 = time.perf_counter()  # the page opened again, now with a session
        await page.reload()
        await wait("first item after a reload", item_js, "")
        loads.append(time.perf_counter() - t0)
        rng = random.Random(user)
        while not done.is_set():
            item = await page.locator("#wb-item input").input_value()
            await asyncio.sleep(rng.uniform(0, 2 * think))
            await page.keyboard.press("a")
            await page.keyboard.press("2")
            await wait("enabled Submit", "() => !document.querySelector('#wb-submit').disabled")
            t0 = time.perf_counter()
            await page.locator("#wb-submit").click()
            await wait(f"next item after submitting {item}", item_js, item)
            submits.append(time.perf_counter() - t0)

    async def run() -> None:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            try:
                await asyncio.gather(*(person(browser, user) for user in users))
            finally:
                await browser.close()

    asyncio.run(run())
    return loads, submits


def people_run(url: str, users: list[str], done, think: float, timeout: float, results) -> None:
    """:func:`browser_run` in a child process: {"r": its result} or {"error": why it failed} into ``results``."""
    try:
        results.put({"r": browser_run(url, users, done, think, timeout)})
    except Exception as exc:  # reported with the results; the HTTP run goes on
        results.put({"error": f"{type(exc).__name__}: {exc}"})


def cpu_by_process(pid: int, skip: tuple[int, ...] = (), own: bool = True) -> dict[int, float]:
    """User + system CPU seconds of a live process (``own``) and of each live descendant but ``skip``'s,
    each with its ended children that it waited for (Linux /proc)."""
    def used(p: int) -> float | None:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            return None
        return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime

    def children(p: int) -> list[int]:
        try:
            return [int(c) for t in os.listdir(f"/proc/{p}/task")
                    for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
        except OSError:
            return []
    out, todo = {}, [pid] if own else children(pid)
    while todo:
        p = todo.pop()
        if p not in skip and (seconds := used(p)) is not None:
            out[p] = seconds
            todo.extend(children(p))
    return out


def cpu_since(before: dict[int, float], now: dict[int, float]) -> float:
    """CPU seconds used between two :func:`cpu_by_process` readings by the processes alive at the second
    (a process that ended in between is missed unless a process of the tree waited for it)."""
    return sum(seconds - before.get(p, 0.0) for p, seconds in now.items())


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
    parser.add_argument("--browser-timeout", type=float, default=60.0,
                        help="seconds a page may wait for an item or an enabled Submit before the run fails")
    parser.add_argument("--client", choices=("gradio", "http"), default="http",
                        help="the API annotators' client: plain HTTP (default; the load generator stays light) "
                             "or gradio_client (through Gradio's queue)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="annotation.concurrency of the server (Gradio queue workers for the API calls)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="annotate_bench."))
    store = make_store(tmp / "http.sqlite", args.annotators, args.items, args.overlap, args.browsers)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "rounds.main", "annotate", "serve", "--db", str(store.path),
                               "--port", str(port), "--set", f"annotation.concurrency={args.concurrency}"],
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
        cpu0: dict[str, float] = {}

        def used() -> dict:
            """CPU readings: the server, this process, its other children (the pages' process, Chromium)."""
            return {"server": cpu_by_process(server.pid), "self": sum(os.times()[:2]),
                    "chromium": cpu_by_process(os.getpid(), skip=(server.pid,), own=False), "at": time.time()}

        def measure_from_here() -> None:
            cpu0.update(used())
        # The pages run in a process of their own: Playwright's Python side sharing this process's GIL
        # with the 20 API annotators' threads delayed both (their clients would be other machines)
        spawn = multiprocessing.get_context("spawn")
        http_done, results = spawn.Event(), spawn.Queue()
        people = spawn.Process(target=people_run, args=(url, [f"web{k:02d}" for k in range(args.browsers)],
                                                        http_done, args.think, args.browser_timeout, results))
        if args.browsers:
            people.start()
        http_lat, acked = http_run(url, store, args.annotators, args.seconds, args.think, measure_from_here,
                                   args.client)
        now = used()  # over the timed HTTP run, the pages still open
        cpu = {"server": cpu_since(cpu0["server"], now["server"]), "self": now["self"] - cpu0["self"],
               "chromium": cpu_since(cpu0["chromium"], now["chromium"]), "at": now["at"] - cpu0["at"]}
        pages_alive = args.browsers > 0 and people.is_alive()
        http_done.set()
        browsed = {}
        if args.browsers:
            try:  # the pages stop at their next item; a wait of theirs fails after browser_timeout
                browsed = results.get(timeout=args.browser_timeout + 120)
            except queue.Empty:
                browsed = {"error": f"the pages' process gave no result (exit code {people.exitcode})"}
            people.join(30)
        http_wall = time.time() - t0
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(30)
    lost, duplicated, unacked = check_writes(store, acked)
    n = len(http_lat)

    base_store = make_store(tmp / "direct.sqlite", args.annotators, args.items, args.overlap)
    base_lat, base_wall = direct_run(base_store.path, args.annotators, n)

    rows = [(f"HTTP ({'gradio_client' if args.client == 'gradio' else 'httpx'} -> app -> store)", n,
             n / args.seconds, http_lat),
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
        print(f"\nthe browser run failed: {browsed['error']}")
    elif args.browsers:
        loads, clicks = browsed["r"]
        print(f"\n{'in the browser (' + str(args.browsers) + ' people)':<40} {'count':>8} {'':>8} {'p50 ms':>8} {'p95 ms':>8}")
        for name, values in (("page load to first item", loads), ("submit to next item", clicks)):
            print(f"{name:<40} {len(values):>8} {'':>8} {1000 * percentile(values, 0.5):>8.1f} "
                  f"{1000 * percentile(values, 0.95):>8.1f}")
    pages = "" if not args.browsers else ", the pages (Playwright, its driver, Chromium) " + (
        f"{cpu['chromium']:.1f}" if pages_alive else "n/a (they stopped early)")
    print(f"\nCPU seconds in the {cpu['at']:.0f} s HTTP run: server {cpu['server']:.1f}, this process (API "
          f"annotators) {cpu['self']:.1f}{pages}; "
          f"the {os.cpu_count()} cores offered {os.cpu_count() * cpu['at']:.0f} (other jobs not counted)")
    print(f"\nwrites: {lost} lost, {duplicated} duplicated, {unacked} stored without acknowledgement")
    print(f"target p95 <= 200 ms: {'met' if p95 <= 200 else 'NOT met'} ({p95:.0f} ms)")
    if "r" in browsed and browsed["r"][1]:
        click95 = 1000 * percentile(browsed["r"][1], 0.95)
        print(f"in the browser, submit to next item p95 <= 200 ms: {'met' if click95 <= 200 else 'NOT met'} "
              f"({click95:.0f} ms)")
    return 0 if lost == duplicated == unacked == 0 and "error" not in browsed else 1


if __name__ == "__main__":
    sys.exit(main())

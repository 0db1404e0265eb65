"""Dashboard page load in a real browser against `lmrec serve` of a given artefact.

    python benchmarks/ui_page_load.py --model-dir MODEL --user USER --item ITEM \
        --rounds 10 --out benchmarks/results/ui-page-load-beauty.json

Starts `lmrec serve` (a fresh state file and a read+admin key made with `lmrec keys`)
on a free loopback port, opens every dashboard page in headless chromium `--rounds`
times in rotation, and reports per page and overall the 95th percentile of the time
from navigation start to the page's data drawn (the `lmrec-ready` mark), as
`tests/serving/test_ui_browser.py` measures it. Needs Debian's chromium and
chromium-driver, and selenium.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    return webdriver.Chrome(
        service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"), options=options
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--item", required=True)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lmrec = [sys.executable, "-m", "lmrec.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.json"
        key = (
            subprocess.run(
                [*lmrec, "keys", "--name", "bench", "--scopes", "read,admin", "--file", str(keys)],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                *lmrec,
                "serve",
                "--model-dir",
                str(args.model_dir),
                "--db",
                f"{tmp}/state.db",
                "--api-keys-file",
                str(keys),
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            pages = [
                "/ui/login",
                "/ui",
                f"/ui/user#user={args.user}",
                f"/ui/item#item={args.item}",
                "/ui/experiments",
                "/ui/reports",
            ]
            driver = browser()
            try:
                driver.get(f"{url}/ui/login")
                driver.execute_script("sessionStorage.setItem('lmrec.key', arguments[0]);", key)
                ready: dict[str, list[float]] = {p: [] for p in pages}
                for _ in range(args.rounds + 1):  # the first round warms caches, not counted
                    for page in pages:
                        driver.get(f"{url}{page}")
                        WebDriverWait(driver, 30, poll_frequency=0.02).until(
                            lambda d: d.execute_script("return document.body.dataset.ready") == "1"
                        )
                        mark = driver.execute_script(
                            "return performance.getEntriesByName('lmrec-ready')[0].startTime"
                        )
                        ready[page].append(float(mark))
            finally:
                driver.quit()
        finally:
            server.terminate()
            server.wait(timeout=30)
    counted = {p: v[1:] for p, v in ready.items()}
    doc = {
        "model_dir": str(args.model_dir),
        "rounds": args.rounds,
        "p95_ms": {p: round(float(np.percentile(v, 95)), 1) for p, v in counted.items()},
        "median_ms": {p: round(float(np.median(v)), 1) for p, v in counted.items()},
        "p95_all_ms": round(float(np.percentile([x for v in counted.values() for x in v], 95)), 1),
    }
    print(json.dumps(doc, indent=2))
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()

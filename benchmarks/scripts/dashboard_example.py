"""The committed example of the history dashboard: ``joulebench history html`` over a
committed history database, and a screenshot of its first screen at 1280 px taken by
headless Chromium (Debian's, through playwright), with its size and any console error
printed.

    python benchmarks/scripts/dashboard_example.py [DB] [OUT_DIR]

Defaults: results/reference/history-work/nightly.sqlite (ten real nights of quick digits
with a planted work step) into results/reference/history-work/dashboard/.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    db = Path(argv[0]) if argv else ROOT / "results" / "reference" / "history-work" / "nightly.sqlite"
    out = Path(argv[1]) if len(argv) > 1 else db.parent / "dashboard"
    from harness.cli import main as joulebench

    if joulebench(["history", "html", "--db", str(db), "--out", str(out)]) != 0:
        return 1
    page = out / "index.html"
    print(f"{page}: {page.stat().st_size / 1e6:.2f} MB")
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(page.as_uri())
            tab.screenshot(path=str(out / "first-screen.png"))
            tab.locator("#series-0").screenshot(path=str(out / "first-series.png"))
        finally:
            browser.close()
    print(f"console errors: {len(errors)}" + (f": {errors}" if errors else ""))
    print(f"screenshots: {out / 'first-screen.png'}, {out / 'first-series.png'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

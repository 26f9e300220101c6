"""Debian's headless Chromium for the view tests: where it is, how it starts, an offline page."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"  # Debian's build; never a browser downloaded by `playwright install`
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def offline_page(browser, width: int, height: int, console_errors: bool = False):
    """A page that may load file: URLs only. Returns (page, external, errors): the URLs it blocked
    and the page's uncaught errors (plus console errors when asked)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    external: list[str] = []
    errors: list[str] = []

    def block(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    page.route("**/*", block)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if console_errors:
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return page, external, errors

"""Browser assets of the query UI: YASGUI from npm, served by the app itself.

The npm package is pinned in server/editor/package.json and package-lock.json (shipped with the
package, so an installed wheel can fetch the editor too). This step runs ``npm ci`` there and copies
the built files into ``server/static/vendor/yasgui/`` (git-ignored, never committed, never loaded
from a CDN)::

    python -m server.assets            # npm ci, then copy
    python -m server.assets --no-npm   # copy from an existing node_modules/

Without the assets, /sparql is the plain HTML form and says how to get the editor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from .named_queries import NamedQuery, ParamError, bind_values, current_queries

EDITOR_DIR = Path(__file__).resolve().parent / "editor"  # package.json, package-lock.json (and node_modules/)
PACKAGE = "@zazuko/yasgui"
PACKAGE_BUILD = EDITOR_DIR / "node_modules" / "@zazuko" / "yasgui" / "build"
VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor" / "yasgui"
FILES = ("yasgui.min.js", "yasgui.min.css", "yasgui.min.js.map")
REQUIRED = ("yasgui.min.js", "yasgui.min.css")
INSTALL_HINT = "medcode assets"


class AssetError(RuntimeError):
    """The assets could not be installed (no npm, npm failed, or the package is not where expected)."""


def installed() -> bool:
    """Whether the vendor files the query page needs are present."""
    return all((VENDOR_DIR / name).is_file() for name in REQUIRED)


def run_npm_ci(root: Path = EDITOR_DIR) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError("npm is not installed: install Node.js (with npm) to get the query editor")
    # --ignore-scripts: nothing from the registry runs at install time; the build files are prebuilt
    cmd = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssetError(f"`{' '.join(cmd[1:])}` failed:\n{result.stdout}{result.stderr}")


def copy_assets(source: Path = PACKAGE_BUILD, target: Path = VENDOR_DIR) -> list[Path]:
    """Copy the built YASGUI files (and its licence and version) into the static vendor folder."""
    missing = [name for name in REQUIRED if not (source / name).is_file()]
    if missing:
        raise AssetError(f"{PACKAGE} is not installed in {source.parent} (missing {', '.join(missing)}); "
                         f"run `npm ci` in {EDITOR_DIR} first")
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
            copied.append(target / name)
    package_json = source.parent / "package.json"
    version = json.loads(package_json.read_text(encoding="utf-8")).get("version", "?")
    (target / "VERSION").write_text(f"{PACKAGE} {version}\n", encoding="utf-8")
    for name in ("LICENSE", "LICENSE.md", "license"):
        if (source.parent / name).is_file():
            shutil.copyfile(source.parent / name, target / "LICENSE")
            break
    return copied


def install(npm: bool = True) -> list[Path]:
    if npm:
        run_npm_ci()
    return copy_assets()


def tab_query(query: NamedQuery) -> str:
    """The named query's text for an editor tab: its parameters bound to their defaults exactly as the API
    binds them (a VALUES block opening the WHERE group), so the tab runs as the API's default call."""
    try:
        return bind_values(query.text, query.bindings({}))
    except (ParamError, ValueError):  # a parameter without a default, or nowhere to bind it
        return query.text


def query_ui_config() -> dict[str, Any] | None:
    """What the query page's editor needs (endpoint, prefixes, one tab per named query), or None when
    the YASGUI files are not installed. Called from templates/sparql.html."""
    if not installed():
        return None
    from flask import current_app, request, url_for

    from kg.contract import PREFIXES

    return {
        "endpoint": url_for("sparql.endpoint"),
        "siteBase": current_app.config["PUBLIC_BASE"],  # IRIs below it are served by the app at /{rest}
        "localRoot": request.script_root + "/",
        "prefixes": PREFIXES,
        "tabs": [{"name": q.name, "title": q.title, "description": q.description, "query": tab_query(q)}
                 for q in current_queries().values()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.assets", description=__doc__.splitlines()[0])
    parser.add_argument("--no-npm", action="store_true", help="copy from an existing node_modules/ only")
    args = parser.parse_args(argv)
    try:
        copied = install(npm=not args.no_npm)
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in copied:
        print(f"installed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

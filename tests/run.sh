#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e ".[dev]"
# The report is tested in a real headless browser: Debian's chromium (no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "tests/run.sh: installing Debian's chromium (about 350 MB, once) for the browser test of the report" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "tests/run.sh: chromium is missing and this is not root: the browser test will be skipped" \
      "(install it with: sudo apt-get install chromium)" >&2
  fi
fi
python3 -m ruff check market settlement tests data
python3 -m ruff format --check market settlement tests data
python3 -m mypy
NO_MKDOCS_2_WARNING=1 python3 -m mkdocs build --strict --quiet -f docs/mkdocs.yml
python3 -m pytest "$@"

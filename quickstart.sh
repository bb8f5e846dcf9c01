#!/usr/bin/env bash
# huiyan quick start.  ./quickstart.sh up    — set everything up (Asterisk included) and start huiyan
#                      ./quickstart.sh test  — set everything up and run the whole test suite
# Both are idempotent: the venv, the Asterisk root, the prompts and the database are built once and reused.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv

say() { printf '[quickstart] %s\n' "$*" >&2; }

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the Python virtual environment in $VENV"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$VENV"; "$PYTHON" -m venv "$VENV"
      else
        say "cannot create a venv: install python3-venv (Debian) and run again"; exit 2
      fi
    fi
  fi
  local want have
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  have=$(cat "$VENV/.huiyan-deps" 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    say "installing huiyan and its dependencies"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    "$VENV/bin/python" -m pip install -q -e '.[test]'
    echo "$want" > "$VENV/.huiyan-deps"
  fi
}

# tests/e2e drive Debian's Chromium (Playwright with executable_path, no browser download); a CJK font
# so the screenshots show the Chinese pages as people see them.
ensure_test_browser() {
  if command -v chromium >/dev/null && fc-list :lang=zh 2>/dev/null | grep -q .; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Chromium and a Chinese font for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
  else
    say "the browser tests need Debian's chromium and fonts-wqy-microhei: apt-get install them"; exit 2
  fi
}

# tests/integration/test_postgres.py runs the database tests again on a throw-away PostgreSQL cluster.
ensure_test_postgres() {
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing PostgreSQL's server for the PostgreSQL tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    say "the PostgreSQL tests need its server (Debian: apt-get install postgresql)"; exit 2
  fi
}

cmd=${1:-up}
shift || true
case "$cmd" in
  up)
    ensure_venv
    "$VENV/bin/huiyan" setup
    exec "$VENV/bin/huiyan" up "$@"
    ;;
  test)
    ensure_venv
    # The tests start their own Asterisk on free ports; they reuse the Asterisk root that setup built.
    "$VENV/bin/huiyan" setup
    ensure_test_browser
    ensure_test_postgres
    export HUIYAN_ASTERISK_ROOT="$PWD/var/asterisk-root"
    exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
    ;;
  *)
    echo "usage: $0 up|test [args...]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Browser tests drive Debian's chromium (Playwright's own browser download cannot work here).
set -euo pipefail
# fonts-noto-cjk so screenshots show Chinese instead of empty boxes.
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  echo "installing chromium and CJK fonts with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi
/usr/bin/chromium --version

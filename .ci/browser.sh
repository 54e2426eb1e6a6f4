#!/usr/bin/env bash
# Install Debian's Chromium and the CJK font the printed report names, for the tests that print the
# report to PDF and count its pages (tests/test_report_pdf.py). Sourced by .ci/run.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! fc-list ":family=Noto Sans CJK SC" 2>/dev/null | grep -q .; then
  echo "installing Chromium and the Noto CJK fonts from Debian packages..."
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk fontconfig >/dev/null
fi
echo "Chromium $(chromium --version 2>/dev/null | awk '{print $2}') for the print tests"

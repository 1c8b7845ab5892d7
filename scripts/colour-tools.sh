#!/usr/bin/env bash
# The independent colour engine and the ICC profiles the colour tests compare against:
# Little CMS's command-line tools (transicc) and Debian's free profile collections.
# Installed once; later runs only check. The tests run this themselves.
set -euo pipefail
wanted=(/usr/bin/transicc /usr/share/color/icc/colord/AdobeRGB1998.icc /usr/share/color/icc/Gray.icc)
missing=0
for f in "${wanted[@]}"; do [[ -e $f ]] || missing=1; done
(( missing )) || exit 0
export DEBIAN_FRONTEND=noninteractive
sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
packages=(liblcms2-utils colord-data icc-profiles-free)
timeout 600 $sudo apt-get install -y --no-install-recommends "${packages[@]}" ||
  { timeout 300 $sudo apt-get update && timeout 600 $sudo apt-get install -y --no-install-recommends "${packages[@]}"; }

#!/usr/bin/env bash
# The independent colour engine and the ICC profiles the colour tests compare against:
# Little CMS's command-line tools (transicc), Debian's free profile collections, and
# Ghostscript's profiles (libgs-common) for a CMYK one, and libjxl's cjxl (libjxl-tools)
# to make JPEG XL files with a profile.
# Installed once; later runs only check. The tests run this themselves.
set -euo pipefail
wanted=(/usr/bin/transicc /usr/share/color/icc/colord/AdobeRGB1998.icc /usr/share/color/icc/Gray.icc
  /usr/share/color/icc/ghostscript/default_cmyk.icc /usr/bin/cjxl)
missing=0
for f in "${wanted[@]}"; do [[ -e $f ]] || missing=1; done
(( missing )) || exit 0
export DEBIAN_FRONTEND=noninteractive
sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
packages=(liblcms2-utils colord-data icc-profiles-free libgs-common libjxl-tools)
timeout 600 $sudo apt-get install -y --no-install-recommends "${packages[@]}" ||
  { timeout 300 $sudo apt-get update && timeout 600 $sudo apt-get install -y --no-install-recommends "${packages[@]}"; }

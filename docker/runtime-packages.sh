#!/bin/sh
# Prints, one a line, the Debian/Ubuntu packages that hold the shared libraries the given
# binaries link directly (their DT_NEEDED entries, resolved by ldd), so that a runtime image
# can `apt-get install` exactly those and let apt bring their own dependencies. Libraries that
# no package owns (libtorch unpacked under /opt, the CUDA driver the container toolkit injects)
# are skipped. Fails if a binary is missing or ldd cannot resolve one of its libraries.
#   docker/runtime-packages.sh /usr/local/bin/vqd-server /usr/local/bin/vqd-client
set -eu
if [ "$#" -eq 0 ]; then
  echo "usage: $0 BINARY..." >&2
  exit 2
fi
for bin in "$@"; do
  if [ ! -f "$bin" ]; then
    echo "runtime-packages: $bin: no such file" >&2
    exit 1
  fi
  if ldd "$bin" | grep -q "not found"; then
    echo "runtime-packages: $bin: unresolved libraries:" >&2
    ldd "$bin" | grep "not found" >&2
    exit 1
  fi
done
for bin in "$@"; do
  ldd "$bin" > /tmp/runtime-packages.ldd
  readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r soname; do
    awk -v so="$soname" '$1 == so && $2 == "=>" {print $3}' /tmp/runtime-packages.ldd
  done
done | sort -u | while read -r lib; do
  real=$(readlink -f "$lib")
  # With merged /usr, dpkg may know the file under /lib or under /usr/lib.
  for path in "$lib" "$real" "/usr$lib" "${lib#/usr}" "/usr$real" "${real#/usr}"; do
    if owner=$(dpkg-query -S "$path" 2>/dev/null); then
      echo "$owner" | head -n 1 | cut -d: -f1
      break
    fi
  done
done | sort -u
rm -f /tmp/runtime-packages.ldd

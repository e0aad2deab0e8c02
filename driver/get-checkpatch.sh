#!/usr/bin/env bash
# Print the path of the kernel's scripts/checkpatch.pl, fetching it first if
# needed. Debian's linux-headers packages do not ship it, so it is taken
# from Debian's linux-source-6.1 package (apt-get download, not installed)
# and kept in ${PCIEFW_CACHE:-~/.cache/pciefw}/checkpatch/ with the two
# data files it reads (spelling.txt, const_structs.checkpatch).
set -euo pipefail
cache=${PCIEFW_CACHE:-$HOME/.cache/pciefw}/checkpatch
cp=$cache/scripts/checkpatch.pl
if [ -x "$cp" ]; then
	echo "$cp"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download linux-source-6.1 >&2)
deb=$(ls "$tmp"/linux-source-6.1_*.deb)
mkdir -p "$cache"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-6.1.tar.xz |
	xz -dc | tar -x -C "$cache" --strip-components=1 \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch
echo "$cp"

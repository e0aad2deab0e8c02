#!/usr/bin/env bash
# Pack a test initramfs: the cached base image (tests/guest/build-guest.sh)
# plus extra files.
#
# Usage: mkinitramfs.sh OUT.cpio.gz [--add SRC:DEST]... [--test-script FILE]
#   --add SRC:DEST     copy host file or directory SRC to DEST in the guest
#                      (DEST absolute; a DEST ending in / keeps SRC's name)
#   --test-script FILE install FILE as /test.sh (run by /init)
#
# Fast: the base is packed once by build-guest.sh; this packs only the extra
# files into a second gzip'd newc cpio and appends it (the kernel unpacks
# concatenated archives in order, later entries replacing earlier ones).
# Deterministic: sorted names, uid/gid 0, fixed mtimes, gzip -n.
#
# If GUEST_BASE and GUEST_BASE_CPIO are set (from `build-guest.sh
# --print-env`), they are used as is; otherwise build-guest.sh is run.
set -euo pipefail
shopt -s inherit_errexit  # also stop on errors inside $(...)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EPOCH=${SOURCE_DATE_EPOCH:-0}

log() { printf 'mkinitramfs: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

# Copy SRC to DEST under the staging root, creating parent directories.
add_file() {
	local stage=$1 src=$2 dest=$3
	[ -e "$src" ] || die "no such file: $src"
	case "$dest" in /*) ;; *) die "DEST must be absolute: $dest" ;; esac
	case "$dest" in */) dest=$dest$(basename "$src") ;; esac
	mkdir -p "$stage$(dirname "$dest")"
	cp -rL --preserve=mode "$src" "$stage$dest"
}

# Directories that also exist in the base would get the overlay's mode when
# unpacked (e.g. /tmp losing its sticky bit), so give them the base's mode.
match_base_modes() {
	local stage=$1 d
	(cd "$stage" && find . -mindepth 1 -type d) | while read -r d; do
		if [ -d "$GUEST_BASE/$d" ]; then
			chmod --reference="$GUEST_BASE/$d" "$stage/$d"
		fi
	done
}

pack_cpio() {
	local root=$1 out=$2
	find "$root" -exec touch -h -d "@$EPOCH" {} +
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -6 >"$out"
}

main() {
	[ $# -ge 1 ] || { usage >&2; exit 2; }
	case "$1" in -h | --help) usage; exit 0 ;; -*) die "first argument is OUT" ;; esac
	local out=$1
	shift

	if [ -z "${GUEST_BASE:-}" ] || [ -z "${GUEST_BASE_CPIO:-}" ]; then
		eval "$("$HERE/build-guest.sh" --print-env)"
	fi
	[ -f "$GUEST_BASE_CPIO" ] || die "missing base image $GUEST_BASE_CPIO"

	# Global: the EXIT trap runs after main's locals are gone.
	STAGE=$(mktemp -d)
	trap 'rm -rf "$STAGE" "$STAGE.overlay.gz"' EXIT
	local stage=$STAGE
	chmod 0755 "$stage"

	while [ $# -gt 0 ]; do
		case "$1" in
		--add)
			[ $# -ge 2 ] || die "--add needs SRC:DEST"
			[[ "$2" == *:* ]] || die "--add needs SRC:DEST, got $2"
			add_file "$stage" "${2%:*}" "${2##*:}"
			shift 2
			;;
		--test-script)
			[ $# -ge 2 ] || die "--test-script needs FILE"
			add_file "$stage" "$2" /test.sh
			chmod 0755 "$stage/test.sh"
			shift 2
			;;
		*) die "unknown argument: $1" ;;
		esac
	done
	match_base_modes "$stage"

	mkdir -p "$(dirname "$out")"
	pack_cpio "$stage" "$stage.overlay.gz"
	cat "$GUEST_BASE_CPIO" "$stage.overlay.gz" >"$out.tmp"
	mv "$out.tmp" "$out"
}

main "$@"

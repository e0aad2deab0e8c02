#!/usr/bin/env bash
# Build the Linux PCI endpoint framework and the kernel's endpoint test for
# the guest kernel (Debian's 6.1, built without CONFIG_PCI_ENDPOINT):
#   pci_endpoint.ko      the framework's four core files linked into one
#                        module by pci_endpoint_main.c (each file's
#                        module_init/module_exit becomes a named hook, by sed)
#   pci-epf-test.ko      the endpoint function driver, unchanged
#   pci_endpoint_test.ko the host-side driver, unchanged
#   Module.symvers       what an EPC driver links against
#   pcitest, pcitest.sh  tools/pci, unchanged (pcitest linked statically)
# The sources come from Debian's linux-source-6.1 package of the same
# version as the guest kernel's headers (apt-get download, not installed);
# only the files needed are extracted.  Nothing is written inside the
# repository and no kernel source is ever committed.
#
# Usage: build-epf.sh [--print-env | --print-dir]
#   --print-env  print EPF_*=VALUE lines (shell-quoted) for `eval`
#   --print-dir  print the directory holding the results
# Progress goes to stderr.  Results live under
#   ${PCIEFW_CACHE:-$HOME/.cache/pciefw}/epf/<kernel>-<hash of the inputs>/
# built under a lock; a second run with unchanged inputs only checks a
# stamp.  The extracted sources are kept per source version in
#   ${PCIEFW_CACHE:-$HOME/.cache/pciefw}/epf/src-<version>/
#
# Environment:
#   PCIEFW_CACHE       cache root (default ~/.cache/pciefw)
#   PCIEFW_GUEST_ABI   force a kernel ABI (e.g. 6.1.0-57), as build-guest.sh
#   KDIR               the guest kernel's build tree (default
#                      /usr/src/linux-headers-<abi>-amd64)
set -euo pipefail
shopt -s inherit_errexit  # also stop on errors inside $(...)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
# Our inputs besides this script: they go into the cache key.
OUR_FILES=(Kbuild pci_endpoint_main.c pci_endpoint_hooks.h pci_epf_test_fix.h
	pci_epf_vntb_fix.h)
# What is taken from the kernel source, relative to its top directory.
FRAMEWORK_FILES=(pci-ep-cfs.c pci-epc-core.c pci-epf-core.c pci-epc-mem.c)
# Built unchanged (a force-included header fixes what docs/epc.md 10.3 and
# 13.1 list): the test function and its host driver, the NTB core,
# transport and netdev, the vNTB function and the host's NTB driver.
UNCHANGED_FILES=(
	drivers/pci/endpoint/functions/pci-epf-test.c
	drivers/misc/pci_endpoint_test.c
	drivers/ntb/core.c
	drivers/ntb/ntb_transport.c
	drivers/net/ntb_netdev.c
	drivers/ntb/hw/epf/ntb_hw_epf.c
	drivers/pci/endpoint/functions/pci-epf-vntb.c
)
SRC_FILES=(
	"${FRAMEWORK_FILES[@]/#/drivers/pci/endpoint/}"
	"${UNCHANGED_FILES[@]}"
	tools/pci/pcitest.c
	tools/pci/pcitest.sh
	include/uapi/linux/pcitest.h
)

log() { printf 'build-epf: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Same derivation as tests/guest/build-guest.sh: the ABI that
# linux-image-amd64 depends on.
find_abi() {
	local abi=${PCIEFW_GUEST_ABI:-}
	[ -n "$abi" ] || abi=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/.*Depends: linux-image-\(6\.[0-9.]*-[0-9]*\)-amd64.*/\1/p' |
		head -n1)
	[ -n "$abi" ] || die "cannot find Debian's linux-image-amd64 (run scripts/setup.sh)"
	printf '%s\n' "$abi"
}

# The Debian version of the installed headers (e.g. 6.1.192-3): the source
# must be exactly that version, or the modules would not match the kernel.
source_version() {
	local v
	v=$(dpkg-query -W -f='${Version}' "linux-headers-$KVER" 2>/dev/null) ||
		die "linux-headers-$KVER is not installed (run scripts/setup.sh)"
	[ -n "$v" ] || die "no version for linux-headers-$KVER"
	printf '%s\n' "$v"
}

# Download linux-source-6.1=$SRCVER once (kept: the sources test checks
# the files built against it) and extract SRC_FILES from it; the stamp
# names them, so a longer list extracts again.
fetch_sources() {
	local tmp
	if [ -f "$SRCDIR/.extracted" ] &&
		printf '%s\n' "${SRC_FILES[@]}" | cmp -s - "$SRCDIR/.extracted"; then
		return 0
	fi
	tmp=$(mktemp -d "$CACHE/fetch.XXXXXX")
	if [ ! -f "$DEB" ]; then
		log "downloading linux-source-6.1=$SRCVER"
		(cd "$tmp" && apt-get download -q "linux-source-6.1=$SRCVER" >&2) ||
			die "apt-get download linux-source-6.1=$SRCVER failed"
		mv "$tmp"/linux-source-6.1_*.deb "$DEB"
	fi
	log "extracting ${#SRC_FILES[@]} files"
	mkdir -p "$tmp/src"
	dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./usr/src/linux-source-6.1.tar.xz |
		xz -dc | tar -x -C "$tmp/src" --strip-components=1 \
			"${SRC_FILES[@]/#/linux-source-6.1/}"
	rm -rf "$SRCDIR"
	mv "$tmp/src" "$SRCDIR"
	rm -rf "$tmp"
	printf '%s\n' "${SRC_FILES[@]}" > "$SRCDIR/.extracted"
}

# Everything that should trigger a rebuild when it changes.
input_hash() {
	{
		sha256sum "$SELF"
		(cd "$HERE" && sha256sum "${OUR_FILES[@]}")
		printf 'kver=%s src=%s kdir=%s\n' "$KVER" "$SRCVER" "$KDIR"
		sha256sum "$KDIR/Module.symvers"
		${CC:-gcc} --version | head -n1
	} | sha256sum | cut -c1-16
}

# Replace `module_init(fn);` by an exported-to-the-module hook
# pci_endpoint_<part>_init() and `module_exit(fn);` by ..._exit(), which
# pci_endpoint_main.c calls.  The exit function loses __exit because the
# init error path calls it too (modpost forbids init-to-exit references).
# Each substitution must hit exactly once: a changed source fails here.
patch_framework_file() {
	local file=$1 part=$2 fn_init fn_exit
	fn_init=$(sed -n 's/^module_init(\([a-z_]*\));$/\1/p' "$file")
	fn_exit=$(sed -n 's/^module_exit(\([a-z_]*\));$/\1/p' "$file")
	if [ "$(printf '%s\n' "$fn_init" | wc -w)" != 1 ] ||
		[ "$(printf '%s\n' "$fn_exit" | wc -w)" != 1 ]; then
		die "$file: expected one module_init and one module_exit"
	fi
	grep -qx "static void __exit $fn_exit(void)" "$file" ||
		die "$file: no 'static void __exit $fn_exit(void)'"
	sed -i \
		-e "s/^module_init($fn_init);\$/int __init pci_endpoint_${part}_init(void) { return $fn_init(); }/" \
		-e "s/^module_exit($fn_exit);\$/void pci_endpoint_${part}_exit(void) { $fn_exit(); }/" \
		-e "s/^static void __exit $fn_exit(void)\$/static void $fn_exit(void)/" \
		"$file"
}

build() {
	local tmp=$OUT.tmp f
	rm -rf "$tmp"
	mkdir -p "$tmp/build" "$tmp/include/linux"
	for f in "${FRAMEWORK_FILES[@]}"; do
		cp "$SRCDIR/drivers/pci/endpoint/$f" "$tmp/build/"
	done
	for f in "${UNCHANGED_FILES[@]}"; do
		cp "$SRCDIR/$f" "$tmp/build/"
	done
	(cd "$HERE" && cp "${OUR_FILES[@]}" "$tmp/build/")
	patch_framework_file "$tmp/build/pci-ep-cfs.c" cfs
	patch_framework_file "$tmp/build/pci-epc-core.c" epc
	patch_framework_file "$tmp/build/pci-epf-core.c" epf

	log "building modules against $KDIR"
	make -s -C "$KDIR" M="$tmp/build" modules >&2
	for f in pci_endpoint.ko pci-epf-test.ko pci_endpoint_test.ko \
		ntb.ko ntb_transport.ko ntb_netdev.ko ntb_hw_epf.ko \
		pci-epf-vntb.ko Module.symvers; do
		cp "$tmp/build/$f" "$tmp/"
	done

	# pcitest includes <linux/pcitest.h>: the source's own uapi header.
	cp "$SRCDIR/include/uapi/linux/pcitest.h" "$tmp/include/linux/"
	log "building pcitest (static)"
	${CC:-gcc} -O2 -Wall -static -D_GNU_SOURCE -I"$tmp/include" \
		-o "$tmp/pcitest" "$SRCDIR/tools/pci/pcitest.c"
	install -m 0755 "$SRCDIR/tools/pci/pcitest.sh" "$tmp/pcitest.sh"

	rm -rf "$OUT"
	mv "$tmp" "$OUT"
	touch "$OUT/.done"
}

print_env() {
	emit() { printf '%s=%q\n' "$1" "$2"; }
	emit EPF_DIR "$OUT"
	emit EPF_KVER "$KVER"
	emit EPF_SOURCE_VERSION "$SRCVER"
	emit EPF_FRAMEWORK_KO "$OUT/pci_endpoint.ko"
	emit EPF_TEST_KO "$OUT/pci-epf-test.ko"
	emit EPF_HOST_KO "$OUT/pci_endpoint_test.ko"
	emit EPF_SYMVERS "$OUT/Module.symvers"
	emit EPF_PCITEST "$OUT/pcitest"
	emit EPF_PCITEST_SH "$OUT/pcitest.sh"
	emit EPF_NTB_KO "$OUT/ntb.ko"
	emit EPF_NTB_TRANSPORT_KO "$OUT/ntb_transport.ko"
	emit EPF_NTB_NETDEV_KO "$OUT/ntb_netdev.ko"
	emit EPF_NTB_HW_EPF_KO "$OUT/ntb_hw_epf.ko"
	emit EPF_VNTB_KO "$OUT/pci-epf-vntb.ko"
	# What the sources test checks the built files against.
	emit EPF_SOURCE_DEB "$DEB"
	emit EPF_SOURCE_DIR "$SRCDIR"
	emit EPF_BUILD_DIR "$OUT/build"
	emit EPF_FRAMEWORK_FILES "${FRAMEWORK_FILES[*]/#/drivers/pci/endpoint/}"
	emit EPF_UNCHANGED_FILES "${UNCHANGED_FILES[*]}"
}

main() {
	local want=
	case "${1:-}" in
	--print-env | --print-dir) want=$1 ;;
	"") ;;
	-h | --help) sed -n '2,/^set -e/p' "$SELF" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument: $1" ;;
	esac

	local abi
	abi=$(find_abi)
	KVER=$abi-amd64
	KDIR=${KDIR:-/usr/src/linux-headers-$KVER}
	[ -f "$KDIR/Makefile" ] || die "no kernel build tree at $KDIR (run scripts/setup.sh)"
	SRCVER=$(source_version)
	CACHE=${PCIEFW_CACHE:-$HOME/.cache/pciefw}/epf
	SRCDIR=$CACHE/src-$SRCVER
	DEB=$CACHE/linux-source-6.1_${SRCVER}_all.deb
	mkdir -p "$CACHE"
	# Parallel runs share the cache: one builder at a time.
	exec 9>"$CACHE/.lock"
	flock 9

	OUT=$CACHE/$KVER-$(input_hash)
	if [ -f "$OUT/.done" ]; then
		log "up to date: $OUT"
	else
		fetch_sources
		build
		log "built $OUT"
	fi

	case "$want" in
	--print-env) print_env ;;
	--print-dir) printf '%s\n' "$OUT" ;;
	esac
}

main "$@"

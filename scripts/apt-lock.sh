# Sourced by the scripts that run apt-get as root (scripts/setup.sh,
# tests/guest/build-guest.sh).  apt holds locks (the dpkg front end, the
# package lists) that another apt may hold at that moment: a second ./dev,
# unattended-upgrades, a user's apt.  apt_get waits for them, within a bound
# (PCIEFW_APT_WAIT seconds, default 600), instead of failing at once;
# anything else apt says is shown as apt said it.
#   apt_get ARGS...   apt-get ARGS, quiet on success, its output on failure
apt_get() {
	local wait=${PCIEFW_APT_WAIT:-600} start=$SECONDS out rc said=0
	while :; do
		rc=0
		# DPkg::Lock::Timeout covers the front-end lock; the lists lock
		# of "apt-get update" is not covered by it, hence the loop.
		out=$(DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get \
			-o DPkg::Lock::Timeout=30 "$@" 2>&1) || rc=$?
		[ "$rc" -eq 0 ] && return 0
		if grep -qE 'Could not get lock|Unable to lock' <<<"$out" &&
			[ $((SECONDS - start)) -lt "$wait" ]; then
			if [ "$said" -eq 0 ]; then
				printf 'apt: another apt holds its lock; waiting up to %s s\n' \
					"$wait" >&2
				said=1
			fi
			sleep 3
			continue
		fi
		printf '%s\n' "$out" >&2
		return "$rc"
	done
}

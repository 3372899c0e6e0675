# SPDX-License-Identifier: MIT
# Shared by run-tests.sh and judges.sh (sourced, not run): host packages, the private apt roots and
# the QEMU guest settings. The caller defines note and die.

# The guests' QEMU CPU model and extra kernel arguments (see scripts/vm/README.md).
VM_CPU=${NCDEVMEM_VM_CPU:-max}
# Every guest boots with mitigations=off: under TCG the Spectre mitigations (retpolines, RSB
# filling, usercopy barriers) cost about a fifth of the 6.12 guest's time (111 s -> 88 s) and guard
# nothing here; devmem's code paths do not depend on them. NCDEVMEM_VM_APPEND adds arguments.
VM_CMDLINE="console=ttyS0 panic=-1 quiet mitigations=off"
VM_APPEND=${NCDEVMEM_VM_APPEND:-}

# install_pkgs PKG...: apt-get installs those of PKG that are missing.
install_pkgs() {
	local p missing=()
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	[ ${#missing[@]} -gt 0 ] || return 0
	note "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# archive_uri: the Debian archive the host's apt sources name (no trailing slash), else deb.debian.org.
archive_uri() {
	local uri
	uri=$(grep -rhoE 'https?://[^ ]*debian\.org/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		head -1 | tr -d ' ' || true)
	uri=${uri:-http://deb.debian.org/debian}
	echo "${uri%/}"
}

# private_apt DIR SUITE [APT.CONF LINE...]: an apt root in DIR for SUITE of archive_uri's archive,
# with its own sources, lists, cache and (empty) dpkg status and the host's trusted keyrings, so
# /etc/apt is left alone; use it with APT_CONFIG=DIR/apt.conf.
private_apt() {
	local a=$1 suite=$2 line
	shift 2
	mkdir -p "$a"/{etc/sources.list.d,etc/preferences.d,etc/apt.conf.d,state/lists/partial,cache/archives/partial,log}
	: >"$a/state/status"
	echo "deb $(archive_uri) $suite main" >"$a/etc/sources.list"
	{
		cat <<-EOC
			Dir::State "$a/state";
			Dir::State::status "$a/state/status";
			Dir::Cache "$a/cache";
			Dir::Etc "$a/etc";
			Dir::Etc::Trusted "/etc/apt/trusted.gpg";
			Dir::Etc::TrustedParts "/etc/apt/trusted.gpg.d";
			Dir::Log "$a/log";
			APT::Architecture "amd64";
			APT::Architectures "amd64";
			Acquire::Languages "none";
		EOC
		for line in "$@"; do echo "$line"; done
	} >"$a/apt.conf"
}

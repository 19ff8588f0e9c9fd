#!/usr/bin/env bash
# Puts a real OpenSSH 10.0 (client and server, with the post-quantum mlkem768x25519-sha256 key
# exchange) in $HOLDFAST_OPENSSH10 (default /tmp/holdfast-openssh10) for the tests that need one:
# Debian 12's bookworm-backports packages, downloaded with a private sources list (the system's
# sources, its installed packages and its own ssh are left as they are) and unpacked with dpkg -x.
# Idempotent. Says what it did, or why it could not; the tests that need it then say they skipped.
set -u
dest=${HOLDFAST_OPENSSH10:-/tmp/holdfast-openssh10}
if [ -x "$dest/usr/bin/ssh" ] && "$dest/usr/bin/ssh" -V 2>&1 | grep -q '^OpenSSH_10'; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
  echo "test setup: no apt-get/dpkg: OpenSSH 10.0 not fetched; the post-quantum interop tests will say they skipped"
  exit 0
fi
# The archive this machine already uses (deb822 or one-line sources), else Debian's.
uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)
[ -n "$uri" ] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1)
[ -n "$uri" ] || uri=http://deb.debian.org/debian
work=$(mktemp -d /tmp/holdfast-openssh10-fetch.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm-backports main" >"$work/sources.list"
opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/nonexistent -o "Dir::State::Lists=$work/lists" -o Debug::NoLocking=1)
log=/tmp/holdfast-openssh10.log
if ! apt-get "${opts[@]}" update >"$log" 2>&1; then
  echo "test setup: could not read bookworm-backports from $uri (see $log): OpenSSH 10.0 not fetched; the post-quantum interop tests will say they skipped"
  exit 0
fi
ver=$(apt-cache "${opts[@]}" madison openssh-client 2>>"$log" | awk -F'|' '$3 ~ /bookworm-backports/ {gsub(/ /, "", $2); print $2}' | grep '^1:10\.' | head -1)
if [ -z "$ver" ]; then
  echo "test setup: bookworm-backports has no OpenSSH 10 (see $log); the post-quantum interop tests will say they skipped"
  exit 0
fi
if ! (cd "$work/debs" && apt-get "${opts[@]}" download "openssh-client=$ver" "openssh-server=$ver" "openssh-sftp-server=$ver" >>"$log" 2>&1); then
  echo "test setup: could not download OpenSSH $ver (see $log); the post-quantum interop tests will say they skipped"
  exit 0
fi
rm -rf "$dest.new" && mkdir -p "$dest.new"
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$dest.new"; done
rm -rf "$dest" && mv "$dest.new" "$dest"
if "$dest/usr/bin/ssh" -V 2>&1 | grep -q '^OpenSSH_10'; then
  echo "test setup: OpenSSH $ver unpacked in $dest ($("$dest/usr/bin/ssh" -V 2>&1))"
else
  echo "test setup: OpenSSH $ver unpacked in $dest but its ssh does not run here: $("$dest/usr/bin/ssh" -V 2>&1 | head -1)"
fi
exit 0

#!/usr/bin/env bash
# Installs what the integration tests need from Debian when it is missing: the OpenSSH server (a real
# target and bastion), the OpenSSH client, iproute2 (ss, ip netns), nftables and conntrack (kernel
# middleboxes), Dropbear's client (a second SSH implementation logging in through holdfast),
# Prometheus (promtool checks the metrics and alert rules; a real server scrapes holdfast), haproxy (a
# real load balancer sending PROXY protocol to two replicas), PuTTY's plink and paramiko (more SSH
# clients), ssh-audit (audits holdfast's algorithm offer), and an OpenSSH 10.0 in a folder of its own
# (test/fetch-openssh10.sh: post-quantum interop), systemd's tools (systemd-analyze checks the unit,
# systemd-notify carries Type=notify messages), setpriv (runs holdfast as another user), python3-seccomp
# (the unit's system call filter, without systemd), and lintian (lists the .deb's findings). Runs as root with apt-get; otherwise it says what
# is missing and the tests that need it say what they skipped.
set -u
need=()
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
command -v dbclient >/dev/null 2>&1 || need+=(dropbear-bin)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v plink >/dev/null 2>&1 || need+=(putty-tools)
command -v puttygen >/dev/null 2>&1 || need+=(putty-tools)
/usr/bin/python3 -c 'import paramiko' >/dev/null 2>&1 || need+=(python3-paramiko)
/usr/bin/python3 -c 'import seccomp' >/dev/null 2>&1 || need+=(python3-seccomp)
command -v ssh-audit >/dev/null 2>&1 || need+=(ssh-audit)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v systemd-notify >/dev/null 2>&1 || need+=(systemd)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
bash "$(dirname "$0")/fetch-openssh10.sh"
[ ${#need[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test setup: installing $pkgs(apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # The package lists first: on a fresh machine they are empty or stale.
  if apt-get update >/tmp/holdfast-test-apt.log 2>&1 \
     && apt-get install -y --no-install-recommends $pkgs >>/tmp/holdfast-test-apt.log 2>&1; then
    echo "test setup: installed $pkgs"
  else
    echo "test setup: could not install $pkgs (see /tmp/holdfast-test-apt.log); tests that need them will say they skipped"
  fi
else
  echo "test setup: missing $pkgs and not root with apt-get: tests that need them will say they skipped"
fi
exit 0

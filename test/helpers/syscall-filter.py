"""Runs a command under the system call filter a systemd unit declares, without systemd:
`syscall-filter.py UNIT_FILE -- COMMAND...`. Reads the unit's SystemCallFilter= lines (an allow list,
then ~ deny lists, as systemd applies them), expands each @group with `systemd-analyze
syscall-filter` (systemd's own lists), and installs a seccomp filter (python3-seccomp) that fails
every other call with SystemCallErrorNumber= (EPERM here), then execs COMMAND. Prints the calls that
were refused nowhere: use strace for that; this only enforces."""
import errno, re, subprocess, sys, os
import seccomp

unit, cmd = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]
groups = {}


def expand(name, seen=None):
    seen = seen or set()
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    if name not in groups:
        out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager", name], capture_output=True, text=True, check=True).stdout
        groups[name] = [l.strip() for l in out.splitlines()[1:] if l.strip() and not l.strip().startswith("#")]
    calls = set()
    for item in groups[name]:
        calls |= expand(item, seen)
    return calls


allow, deny, err = None, set(), errno.EPERM
for line in open(unit):
    m = re.match(r"^\s*SystemCallFilter=(~?)(.*)$", line)
    if m:
        names = set()
        for n in m.group(2).split():
            names |= expand(n)
        if m.group(1):
            deny |= names
        else:
            allow = (allow or set()) | names
    m = re.match(r"^\s*SystemCallErrorNumber=(\w+)", line)
    if m:
        err = getattr(errno, m.group(1))
if allow is None:
    sys.exit("syscall-filter.py: the unit has no SystemCallFilter= allow list")
f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(err))
n = 0
for call in sorted(allow - deny):
    try:
        f.add_rule(seccomp.ALLOW, call)
        n += 1
    except (RuntimeError, ValueError, OSError):
        pass  # a name this architecture does not have
# What systemd itself needs to exec the service is always allowed by it too.
for call in ("execve", "execveat", "exit", "exit_group", "rt_sigreturn"):
    try:
        f.add_rule(seccomp.ALLOW, call)
    except (RuntimeError, ValueError, OSError):
        pass
sys.stderr.write(f"syscall-filter: {n} calls allowed, {len(deny & allow)} of them taken back by ~ lists, others fail with {errno.errorcode[err]}\n")
f.load()
os.execvp(cmd[0], cmd)

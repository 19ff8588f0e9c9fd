#!/usr/bin/env python3
"""Runs a command (the OpenSSH client) on a real pseudo-terminal of 24x80 that it controls, then
resizes the terminal to 40x100, as a user dragging a window does: the kernel sends SIGWINCH and ssh
sends a window-change request. The remote command is expected to print `stty size` for each line it
reads. Lines are sent every 300 ms (polling, bounded by a deadline) until each size has been seen.

usage: pty-winch.py DEADLINE_S -- command args...
prints everything the terminal showed; exits with the command's status (124 on deadline).
"""
import fcntl, os, select, struct, subprocess, sys, termios, time

def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))

def main():
    deadline = time.monotonic() + float(sys.argv[1])
    argv = sys.argv[sys.argv.index('--') + 1:]
    master, slave = os.openpty()
    set_size(slave, 24, 80)

    def make_controlling():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, preexec_fn=make_controlling, close_fds=True)
    os.close(slave)
    seen = b''
    phase = 0  # 0: waiting for "24 80"; 1: resized, waiting for "40 100"; 2: sent EOF
    next_poke = 0.0
    while time.monotonic() < deadline:
        if phase == 0 and b'24 80' in seen:
            set_size(master, 40, 100)
            phase = 1
        elif phase == 1 and b'40 100' in seen:
            os.write(master, b'\x04')  # EOF: the remote `while read` loop ends
            phase = 2
        now = time.monotonic()
        if phase < 2 and now >= next_poke:
            os.write(master, b'\n')
            next_poke = now + 0.3
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None and phase == 2:
            break
    sys.stdout.write(seen.decode('utf-8', 'replace'))
    sys.stdout.flush()
    # The terminal reads EIO as soon as ssh closes it, a moment before ssh has exited: wait for it
    # (bounded by the deadline) rather than polling once.
    try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        sys.exit(124)
    sys.exit(proc.returncode)

main()

"""A stand-in for systemd's notification socket (sd_notify(3)): binds a unix datagram socket at
argv[1], prints {"bound": true}, then one JSON line per datagram ({"msg": ..., "pid": sender});
file descriptors passed along (sd_notify_barrier's pipe) are closed at once, which is the manager's
answer the sender waits for. Ends when its stdin closes."""
import array, json, os, socket, struct, sys, threading

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print(json.dumps({"bound": True}), flush=True)
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
for _ in range(100000):
    msg, anc, _flags, _addr = s.recvmsg(65536, socket.CMSG_SPACE(64 * 4) + socket.CMSG_SPACE(12))
    pid = None
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % 4])
            for fd in fds:
                os.close(fd)
        elif level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    print(json.dumps({"msg": msg.decode(), "pid": pid}), flush=True)

# An event loop woken through a self-pipe that is a socketpair, as asyncio's is: each round a
# timer thread writes one byte into one end and the loop waits for it in epoll on the other.
# After a restart the pair must still be connected: a dead one reads end-of-file, which the
# loop reports (exit 1); and the loop must not spin (a round of 50 ms burning about as much CPU
# time as wall time).
import selectors
import socket
import sys
import threading
import time

r, w = socket.socketpair()
r.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(r, selectors.EVENT_READ)
total = 0
busy = 0
for i in range(40):
    wall, cpu = time.monotonic(), time.process_time()
    timer = threading.Timer(0.05, w.send, args=(bytes([i]),))
    timer.start()
    got = b""
    while not got:
        for _key, _events in sel.select(timeout=5.0):
            got = r.recv(64)
            if not got:
                print(f"round {i}: end-of-file on the self-pipe", flush=True)
                sys.exit(1)
    timer.join()
    total += got[0] * got[0]
    dw, dc = time.monotonic() - wall, time.process_time() - cpu
    if dw > 0.04 and dc > 0.5 * dw:
        busy += 1
    if i == 2:
        print("ready", flush=True)
print(f"rounds 40, total {total}", flush=True)
print("spinning: " + ("yes" if busy > 2 else "no"), flush=True)

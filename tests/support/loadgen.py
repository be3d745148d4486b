"""A small closed-loop HTTP load generator for the zero-downtime test and benchmark.

Run inside a fleet host's network namespace (``ip netns exec <netns> python -m
tests.support.loadgen ...``), it keeps N connections busy against 127.0.0.1 until a stop
file appears (or a hard time limit passes), then prints one JSON object: requests, 2xx,
non-2xx (by status) and socket errors. Only loopback is ever addressed.
"""

import argparse
import http.client
import json
import os
import threading
import time
from collections import Counter

HARD_LIMIT_SECONDS = 600


def worker(args, stop: threading.Event, counts: Counter, lock: threading.Lock) -> None:
    conn = None
    while not stop.is_set():
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
        try:
            conn.request("GET", args.path, headers={"Host": args.host})
            response = conn.getresponse()
            response.read()
            key = "2xx" if 200 <= response.status < 300 else f"status {response.status}"
            if response.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            key = f"socket error: {type(exc).__name__}"
            conn.close()
            conn = None
        with lock:
            counts[key] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--host", required=True, help="Host header")
    parser.add_argument("--path", default="/")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--ready-file", help="written once the load runs")
    args = parser.parse_args()
    stop, lock, counts = threading.Event(), threading.Lock(), Counter()
    threads = [threading.Thread(target=worker, args=(args, stop, counts, lock), daemon=True)
               for _ in range(args.connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    if args.ready_file:
        open(args.ready_file, "w").close()
    while not os.path.exists(args.stop_file) and time.monotonic() - started < HARD_LIMIT_SECONDS:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(15)
    total = sum(counts.values())
    print(json.dumps({
        "seconds": round(time.monotonic() - started, 2),
        "requests": total,
        "ok": counts["2xx"],
        "non_2xx": sum(v for k, v in counts.items() if k.startswith("status")),
        "socket_errors": sum(v for k, v in counts.items() if k.startswith("socket")),
        "detail": dict(counts),
    }))


if __name__ == "__main__":
    main()

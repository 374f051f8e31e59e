# The `helm test` hook's check (templates/tests/test-readyz.yaml): GET URL until it answers
# 200, for up to TIMEOUT seconds. Through the Service, only ready pods answer at all.
import sys
import time
import urllib.request

url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            print(f"{url}: {reply.status} {reply.read().decode().strip()}")
            sys.exit(0)
    except Exception as error:  # refused, 503 (not ready), timeouts: ask again
        if time.monotonic() > deadline:
            print(f"{url}: no ready replica answered: {error}")
            sys.exit(1)
    time.sleep(3)

# A long Python loop over a dict of a million entries; prints only the final result.
import time

d = {i: i * i for i in range(1_000_000)}
acc = 0
for rnd in range(20):
    for k in range(rnd, 1_000_000, 7):
        acc = (acc * 31 + d[k]) % 1_000_000_007
    time.sleep(0.05)
print(f"dict: {len(d)} entries, acc {acc}")

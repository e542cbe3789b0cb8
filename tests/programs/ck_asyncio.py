# A coroutine under asyncio.run that awaits short sleeps in a loop and adds up a counter. CPython
# up to 3.11 remembers the pid its running loop belongs to: after a restart under another pid,
# asyncio.sleep finds "no running event loop" (crac_restart --same-pid keeps the pid).
import asyncio


async def main():
    total = 0
    for i in range(80):
        await asyncio.sleep(0.02)
        total += i * i
        if i == 5:
            print("ready", flush=True)
    print(f"ticks 80, total {total}", flush=True)


asyncio.run(main())

#!/usr/bin/env python3
"""A TCP proxy that adds a fixed one-way delay in each direction (a round trip of 2 × delay) without
limiting bandwidth: every chunk read is written out `delay` seconds later, in order. It stands in for
a wide-area link on loopback, where `tc netem` is not available, to measure what a protocol's round
trips cost (scripts/federation-wan.sh: HTTP/2 against HTTP/1.1; see README "Performance").

    scripts/delay-proxy.py --listen 7500 --target 7443 --delay-ms 10
"""
import argparse
import asyncio
import time


async def pump(reader, writer, delay):
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(1 << 20)
            if not data:
                break
            queue.put_nowait((time.monotonic() + delay, data))
    except ConnectionError:
        pass
    queue.put_nowait((0, None))
    await sender


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--target", type=int, required=True)
    p.add_argument("--delay-ms", type=float, required=True, help="one-way delay")
    a = p.parse_args()
    delay = a.delay_ms / 1000

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", a.target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer, delay), pump(server_reader, client_writer, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", a.listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())

"""Benchmarks: `python -m bench` shows the service uses HubSpot's whole budget and costs little.

Starts its own local Kafka broker and HubSpot emulators, runs each scenario against the real
`python -m service run` process (and a straightforward baseline loop, `bench.baseline`),
prints one table row per figure with its target, and writes `bench/out/<scenario>.json`
plus `bench/out/throughput.png`. A development tool: `service/` never imports it.
"""

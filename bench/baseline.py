"""The straightforward loop the service is compared with: `python -m bench.baseline ...`.

What a first version of the job would look like: a confluent-kafka consumer takes up to 100
events at a time; they are sent to HubSpot in order, one request at a time (httpx), with no
coalescing: a batch is cut wherever an id repeats, since HubSpot rejects a request that names
an id twice. Each reply's outcome is published as one result per event, the producer is
flushed and the offsets are committed before the next poll. A 429 waits (Retry-After, else
one second) and resends; a 5xx or a transport error waits a second and resends. It uses orjson
like the service, so the comparison is about the design, not the JSON library.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, Message, Producer, TopicPartition

RETRY_WAIT_S = 1.0
BATCH_SIZE = 100


def split_on_repeated_ids(events: Sequence[tuple[Message, dict[str, Any]]]) -> list[list[Any]]:
    """Consecutive runs of events in which no id appears twice (order kept)."""
    batches: list[list[Any]] = []
    current: list[Any] = []
    seen: set[str] = set()
    for item in events:
        event_id = str(item[1].get("id"))
        if event_id in seen or len(current) >= BATCH_SIZE:
            batches.append(current)
            current, seen = [], set()
        current.append(item)
        seen.add(event_id)
    if current:
        batches.append(current)
    return batches


class Loop:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stopping = False
        self.consumer = Consumer(
            {
                "bootstrap.servers": args.bootstrap,
                "group.id": args.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5})
        self.http = httpx.Client(
            base_url=args.hubspot_url,
            headers={"authorization": f"Bearer {args.token}"},
            timeout=30,
        )
        self.path = f"/crm/v3/objects/{args.object_type}/batch/upsert"

    def run(self) -> int:
        def assigned(_: Consumer, partitions: list[TopicPartition]) -> None:
            if self.args.ready_file is not None:
                Path(self.args.ready_file).touch()

        self.consumer.subscribe([self.args.input_topic], on_assign=assigned)
        try:
            while not self.stopping:
                messages = [m for m in self.consumer.consume(BATCH_SIZE, 0.5) if not m.error()]
                if not messages:
                    continue
                events = [(m, self._decode(m)) for m in messages]
                for batch in split_on_repeated_ids(events):
                    self._send(batch)
                self.producer.flush(30)
                self.consumer.commit(asynchronous=False)
        finally:
            self.producer.flush(30)
            self.consumer.close()
            self.http.close()
        return 0

    @staticmethod
    def _decode(message: Message) -> dict[str, Any]:
        try:
            document = orjson.loads(message.value() or b"")
        except orjson.JSONDecodeError:
            return {}
        return document if isinstance(document, dict) else {}

    def _send(self, batch: list[tuple[Message, dict[str, Any]]]) -> None:
        inputs = [
            {
                "id": str(event.get("id")),
                "idProperty": self.args.id_property,
                "properties": {
                    k: "" if v is None else str(v) for k, v in event.get("properties", {}).items()
                },
            }
            for _, event in batch
        ]
        body = orjson.dumps({"inputs": inputs})
        while True:
            try:
                response = self.http.post(
                    self.path, content=body, headers={"content-type": "application/json"}
                )
            except httpx.TransportError:
                time.sleep(RETRY_WAIT_S)
                continue
            if response.status_code == 429:
                time.sleep(float(response.headers.get("retry-after", RETRY_WAIT_S)))
                continue
            if response.status_code >= 500:
                time.sleep(RETRY_WAIT_S)
                continue
            break
        status = "upserted" if response.status_code in (200, 201, 207) else "failed"
        failed = self._failed_ids(response) if response.status_code == 207 else set()
        for message, event in batch:
            event_id = str(event.get("id"))
            result = {
                "status": "failed" if event_id in failed else status,
                "id": event_id,
                "httpStatus": response.status_code,
                "source": {
                    "topic": message.topic(),
                    "partition": message.partition(),
                    "offset": message.offset(),
                },
            }
            self.producer.produce(
                self.args.output_topic, key=message.key(), value=orjson.dumps(result)
            )
        self.producer.poll(0)

    @staticmethod
    def _failed_ids(response: httpx.Response) -> set[str]:
        failed: set[str] = set()
        for error in response.json().get("errors", []):
            for value in (error.get("context") or {}).get("ids", []):
                failed.add(str(value))
        return failed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input-topic", required=True)
    parser.add_argument("--output-topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--hubspot-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--id-property", required=True)
    parser.add_argument("--object-type", default="subscriptions")
    parser.add_argument("--ready-file", help="touched once partitions are assigned")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    loop = Loop(parse_args(argv))

    def on_signal(signum: int, _: FrameType | None) -> None:
        loop.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return loop.run()


if __name__ == "__main__":
    sys.exit(main())

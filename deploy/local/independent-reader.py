#!/usr/bin/python3
"""Reads hub events with a consumer that is not the hub's code: Debian's
python3-confluent-kafka (librdkafka) and its Avro deserializer, which fetches
writer schemas from the registry's Confluent-compatible API by the id in each
record. Keys are plain UTF-8 patient ids, so only values are Avro-decoded.
Prints one JSON object per record; exits after --count records, or with
status 2 when none arrives within --timeout seconds.

  /usr/bin/python3 deploy/local/independent-reader.py \
      --brokers 127.0.0.1:9092 --registry http://127.0.0.1:8081/apis/ccompat/v7 \
      --topic clinical.patient.v1 --count 1
"""
import argparse
import json
import sys
import uuid

from confluent_kafka import Consumer
from confluent_kafka.avro.cached_schema_registry_client import CachedSchemaRegistryClient
from confluent_kafka.avro.serializer.message_serializer import MessageSerializer

p = argparse.ArgumentParser()
p.add_argument("--brokers", required=True)
p.add_argument("--registry", required=True)
p.add_argument("--topic", required=True)
p.add_argument("--count", type=int, default=1)
p.add_argument("--timeout", type=float, default=30.0)
a = p.parse_args()

serializer = MessageSerializer(CachedSchemaRegistryClient({"url": a.registry}))
c = Consumer({
    "bootstrap.servers": a.brokers,
    "group.id": "independent-reader-" + uuid.uuid4().hex[:8],
    "auto.offset.reset": "earliest",
})
c.subscribe([a.topic])
seen = 0
try:
    while seen < a.count:
        m = c.poll(a.timeout)
        if m is None:
            break
        if m.error():
            print(m.error(), file=sys.stderr)
            sys.exit(1)
        v = serializer.decode_message(m.value())
        print(json.dumps({"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                          "key": m.key().decode() if m.key() else None, "value": v}, default=str))
        seen += 1
finally:
    c.close()
sys.exit(0 if seen >= a.count else 2)

"""Kafka entry points: topics, the inbound worker, the relay, projection consumers.

Every worker is a thin loop with one route per outcome, and commits a Kafka offset
(or advances a store position) only after its work is durable.
"""

"""The bridge side of a message's path: Kafka → flow control → Celery broker → offset commit.

``bridge`` runs the loop, ``flow_control`` decides per partition what may go now, ``publisher``
writes Celery messages, ``offsets`` decides what may be committed.
"""

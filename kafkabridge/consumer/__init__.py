"""The bridge side of a message's path: Kafka → held messages → flow control → Celery broker → offset commit.

``bridge`` runs the loop, ``records`` turns Kafka records into messages, ``pending`` holds them per
partition until the broker confirms them, ``flow_control`` decides per partition what may go now,
``publisher`` writes Celery messages, ``offsets`` decides what may be committed.
"""

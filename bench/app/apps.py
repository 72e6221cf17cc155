from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench.app"
    label = "kafkabridge_bench"

"""kafkabridge for Django: dead letters in the database, the admin that requeues them, ``manage.py runbridge``.

Add ``"kafkabridge.contrib.django"`` to ``INSTALLED_APPS`` and set ``KAFKABRIDGE = {"CELERY_APP": ...}``.
"""

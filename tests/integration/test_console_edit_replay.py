"""Edit and replay: a corrected copy of the payload is requeued; the original stays, linked both ways."""

from __future__ import annotations

import base64
import json

from django.contrib.admin.models import LogEntry

from kafkabridge.contrib.django.models import FailedMessage
from tests import support
from tests.app import recorder
from tests.integration.test_console_support import unique_name, operator, post, save_failure, status, url


def test_an_edited_payload_is_requeued_as_a_linked_copy_that_resolves_and_the_original_is_kept(
    ns: str, worker: support.ServiceProcess, requeues_to_this_test: None, database: None
) -> None:
    # Given a failure whose payload is wrong, and an editor
    original = save_failure(f"{ns}.edit", 0, value=b'{"order": 7, "qty": -1}')
    client, user = operator(f"{ns}-editor", "edit_and_replay")
    form = client.get(url("edit", original.pk)).content.decode()
    assert '<label for="id_value">Payload (JSON)</label>' in form and "&quot;qty&quot;: -1" in form

    # When they submit invalid JSON, then the corrected payload
    invalid = post(client, url("edit", original.pk), {"value": '{"order": 7, "qty": }'})
    status_after_invalid = status(original)
    response = post(client, url("edit", original.pk), {"value": '{\n  "order": 7,\n  "qty": 1\n}'})

    # Then the invalid one is refused on the page, the corrected copy is requeued and handled, the original kept
    assert invalid.status_code == 200 and "Not valid JSON" in invalid.content.decode() and status_after_invalid == "failed"
    copy = FailedMessage.objects.get(corrected_from=original)
    assert response.status_code == 302 and response["Location"] == url("change", copy.pk)
    support.wait_until(lambda: status(copy) == FailedMessage.Status.RESOLVED, timeout=60, what="the corrected copy to be resolved")
    handled = recorder.facts(ns)[f"{ns}.edit/0@0"]
    assert base64.b64decode(handled["value"]) == b'{"order":7,"qty":1}' and base64.b64decode(handled["key"]) == b"key"
    original.refresh_from_db()
    assert original.status == FailedMessage.Status.EDITED and bytes(original.value) == b'{"order": 7, "qty": -1}'
    assert f'id="kb-corrected-copy" href="{url("change", copy.pk)}"' in client.get(url("change", original.pk)).content.decode()
    assert f'id="kb-corrected-from" href="{url("change", original.pk)}"' in client.get(url("change", copy.pk)).content.decode()
    assert LogEntry.objects.filter(user=user, object_id=str(original.pk), change_message=f"Edited and replayed as #{copy.pk}").exists()


def test_a_corrected_copy_that_fails_again_is_the_row_updated_not_the_original(database: None) -> None:
    ns = unique_name()
    from tests.integration.test_console_support import attempt

    original = save_failure(f"{ns}.edit", 0)
    copy = FailedMessage.objects.create(**{
        **{f.name: getattr(original, f.name) for f in FailedMessage._meta.concrete_fields if f.name not in ("id", "corrected_from")},
        "status": FailedMessage.Status.REQUEUED, "corrected_from": original,
    })
    FailedMessage.objects.filter(pk=original.pk).update(status=FailedMessage.Status.EDITED)

    again = save_failure(f"{ns}.edit", 0, message="still wrong", history=(attempt(1, host="worker-c"),))

    assert again.pk == copy.pk and again.status == "failed" and again.exception_message == "still wrong"
    assert status(original) == FailedMessage.Status.EDITED


def test_edit_and_replay_needs_its_own_permission(database: None) -> None:
    ns = unique_name()
    row = save_failure(f"{ns}.edit", 0)
    requeuer, _ = operator(f"{ns}-op", "requeue")

    assert requeuer.get(url("edit", row.pk)).status_code == 403
    assert post(requeuer, url("edit", row.pk), {"value": json.dumps({"fixed": True})}).status_code == 403
    assert "Edit and replay" not in requeuer.get(url("change", row.pk)).content.decode()
    assert status(row) == "failed" and not FailedMessage.objects.filter(corrected_from=row).exists()

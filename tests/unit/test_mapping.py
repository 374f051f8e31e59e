from __future__ import annotations

import random

from service.core.model import BatchInput, Status
from service.core.outcomes import map_success
from tests.unit.factories import event


def _inputs(count: int) -> list[BatchInput]:
    return [
        BatchInput(
            f"id-{n}",
            "external_subscription_id",
            f"trace-{n}",
            {"hs_name": "x"},
            [event(f"id-{n}", n)],
        )
        for n in range(count)
    ]


def _result(n: int, *, echo_trace: bool = False) -> dict[str, object]:
    result: dict[str, object] = {
        "id": str(5000 + n),
        "new": n % 2 == 0,
        "createdAt": "2026-11-07T05:31:56.000Z",
        "updatedAt": "2026-11-07T05:31:57.000Z",
        "archived": False,
        "properties": {"external_subscription_id": f"id-{n}"},
    }
    if echo_trace:
        result["objectWriteTraceId"] = f"trace-{n}"
        result["properties"] = {}
    return result


def test_results_are_matched_by_id_property_value_even_when_shuffled() -> None:
    inputs = _inputs(20)
    results = [_result(n) for n in range(20)]
    random.Random(7).shuffle(results)
    mapped = map_success(inputs, 200, {"status": "COMPLETE", "results": results})
    assert not mapped.resend
    for n in range(20):
        outcome = mapped.outcomes[f"trace-{n}"]
        assert outcome.status is Status.UPSERTED
        assert outcome.record is not None
        assert outcome.record.hubspot_id == str(5000 + n)
        assert outcome.record.new is (n % 2 == 0)


def test_results_fall_back_to_the_echoed_trace_id() -> None:
    mapped = map_success(_inputs(2), 200, {"results": [_result(1, echo_trace=True)]})
    assert mapped.outcomes["trace-1"].record is not None
    assert [i.trace_id for i in mapped.resend] == ["trace-0"]


def test_multi_status_maps_errors_to_their_inputs_and_successes_to_theirs() -> None:
    document = {
        "status": "COMPLETE",
        "results": [_result(0), _result(2)],
        "numErrors": 1,
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Property values were not valid",
                "context": {"objectWriteTraceId": ["trace-1"]},
                "errors": [
                    {"message": 'Property "x" does not exist', "code": "PROPERTY_DOESNT_EXIST"}
                ],
            }
        ],
    }
    mapped = map_success(_inputs(3), 207, document)
    assert mapped.outcomes["trace-0"].status is Status.UPSERTED
    failed = mapped.outcomes["trace-1"]
    assert failed.status is Status.FAILED
    assert failed.error is not None
    assert failed.error.category == "VALIDATION_ERROR"
    assert 'Property "x" does not exist' in failed.error.message
    assert failed.error.http_status == 207
    assert not mapped.resend


def test_rate_limited_inputs_inside_a_multi_status_are_resent_not_failed() -> None:
    document = {
        "results": [_result(0)],
        "errors": [
            {
                "category": "RATE_LIMITS",
                "message": "slow down",
                "context": {"objectWriteTraceId": ["trace-1"]},
            }
        ],
    }
    mapped = map_success(_inputs(3), 207, document)
    assert "trace-1" not in mapped.outcomes
    assert [i.trace_id for i in mapped.rate_limited] == ["trace-1"]  # resent after the window
    assert [i.trace_id for i in mapped.resend] == ["trace-2"]  # not named at all


def _unattributed(category: str) -> dict[str, object]:
    """A 207 error without `context.objectWriteTraceId` (every field is optional)."""
    return {"status": "error", "category": category, "message": "Property values were not valid"}


def test_an_unattributed_error_is_the_outcome_of_the_only_input_left() -> None:
    document: dict[str, object] = {
        "results": [_result(0), _result(2)],
        "errors": [_unattributed("VALIDATION_ERROR")],
    }
    mapped = map_success(_inputs(3), 207, document)
    failed = mapped.outcomes["trace-1"]
    assert failed.status is Status.FAILED and failed.error is not None
    assert (failed.error.category, failed.error.http_status) == ("VALIDATION_ERROR", 207)
    assert mapped.resend == [] and mapped.rate_limited == []


def test_an_unattributed_error_with_several_left_sends_each_on_its_own() -> None:
    document: dict[str, object] = {
        "results": [_result(0)],
        "errors": [_unattributed("VALIDATION_ERROR")],
    }
    mapped = map_success(_inputs(3), 207, document)
    assert [i.trace_id for i in mapped.resend] == ["trace-1", "trace-2"]
    assert mapped.resend_one_by_one


def test_an_unattributed_rate_limit_holds_every_input_left_never_fails_them() -> None:
    document: dict[str, object] = {
        "results": [_result(0)],
        "errors": [_unattributed("RATE_LIMITS")],
    }
    mapped = map_success(_inputs(3), 207, document)
    assert [i.trace_id for i in mapped.rate_limited] == ["trace-1", "trace-2"]
    assert mapped.resend == [] and set(mapped.outcomes) == {"trace-0"}


def test_inputs_merely_left_out_are_resent_together() -> None:
    mapped = map_success(_inputs(3), 200, {"results": [_result(0)]})
    assert [i.trace_id for i in mapped.resend] == ["trace-1", "trace-2"]
    assert not mapped.resend_one_by_one

import json

from asr_flywheel import io as fio
from asr_flywheel.errors import TERMINAL_LIMIT, InputError, Problem


def many(n: int) -> InputError:
    return InputError(f"{n} bad rows", [Problem(i, "audio_filepath", "audio file not found") for i in range(1, n + 1)])


def test_terminal_output_is_capped_with_a_count_and_where_the_full_list_is():
    text = many(200_000).render_terminal()
    lines = text.splitlines()
    assert len(lines) == 1 + TERMINAL_LIMIT + 1
    assert lines[TERMINAL_LIMIT] == "  line 50: audio_filepath: audio file not found"
    assert lines[-1] == "  ... and 199950 more (200000 in all); rerun with --json for the full list"


def test_short_lists_are_printed_whole_and_the_exception_message_is_capped_too():
    assert "more" not in many(TERMINAL_LIMIT).render_terminal()
    assert len(str(many(1000)).splitlines()) == TERMINAL_LIMIT + 2


def test_the_full_list_goes_to_a_file(tmp_path):
    path = fio.write_problems(many(120), tmp_path / "problems.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 120 and rows[-1] == {"line": 120, "field": "audio_filepath", "reason": "audio file not found"}

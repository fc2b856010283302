"""Decoding exactly what refine's encoders produce, and explaining what they don't."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mockserver.core.decode import decode_payload, raw_query_values
from mockserver.core.payloads import BtoaRefused, btoa_json, buffer_json, js_stringify
from tests.support.helpers import REFINE_4_PAYLOAD


def test_refine_4_default_payload_decodes_exactly():
    raw = btoa_json(REFINE_4_PAYLOAD)
    result = decode_payload(raw)
    assert result.problems == []
    assert result.payload == REFINE_4_PAYLOAD
    assert list(result.payload) == ["providers", "version", "resourceCount"]
    assert result.encoding == "utf-8"  # pure ASCII is valid UTF-8
    assert result.base64_variant == "standard"


def _payload_with_plus_slash_and_padding() -> dict:
    # This projectId puts a raw '+', a '/' and '=' padding into the base64.
    payload = {**REFINE_4_PAYLOAD, "projectId": ">>>>?"}
    assert btoa_json(payload).endswith("Ij4+Pj4/In0=")
    return payload


def test_raw_plus_slash_and_padding_survive_the_query():
    payload = _payload_with_plus_slash_and_padding()
    raw = btoa_json(payload)
    query = f"payload={raw}"
    assert raw_query_values(query, "payload") == [raw]
    # What a form decoder would do, and why we never use one:
    assert urllib.parse.parse_qs(query)["payload"][0] != raw
    result = decode_payload(raw_query_values(query, "payload")[0])
    assert result.problems == []
    assert result.payload == payload


def test_btoa_latin1_projectid_decodes_as_latin1():
    payload = {**REFINE_4_PAYLOAD, "projectId": "café"}
    raw = btoa_json(payload)
    assert b"caf\xe9" in base64.b64decode(raw)  # one byte, not valid UTF-8
    result = decode_payload(raw)
    assert result.problems == []
    assert result.encoding == "latin-1"
    assert result.payload["projectId"] == "café"


def test_buffer_path_decodes_as_utf8():
    payload = {**REFINE_4_PAYLOAD, "projectId": "café €"}
    with pytest.raises(BtoaRefused):
        btoa_json(payload)  # btoa refuses U+20AC: refine would send nothing
    result = decode_payload(buffer_json(payload))
    assert result.problems == []
    assert result.encoding == "utf-8"
    assert result.payload["projectId"] == "café €"


@pytest.mark.parametrize(
    ("transform", "variant"),
    [
        (lambda raw: raw.rstrip("="), "standard unpadded"),
        (lambda raw: raw.replace("+", "-").replace("/", "_"), "url-safe"),
        (lambda raw: raw.replace("+", "-").replace("/", "_").rstrip("="), "url-safe unpadded"),
        (lambda raw: urllib.parse.quote(raw, safe=""), "percent-encoded standard"),
    ],
)
def test_variants_are_accepted_and_named(transform, variant):
    payload = _payload_with_plus_slash_and_padding()
    result = decode_payload(transform(btoa_json(payload)))
    assert result.problems == []
    assert result.payload == payload
    assert result.base64_variant == variant


def test_plus_turned_into_space_is_reported_with_its_offset():
    payload = _payload_with_plus_slash_and_padding()
    raw = btoa_json(payload)
    offset = raw.index("+")
    result = decode_payload(raw.replace("+", " "))
    assert result.payload is None
    assert result.problems[0].startswith(f"base64: illegal character ' ' at offset {offset}")
    assert "form decoding" in result.problems[0]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "payload: empty"),
        ("eyJ*YSI6MX0=", "base64: illegal character '*' at offset 3"),
        ("eyJhIjoxfQ=a", "base64: illegal character '=' at offset 10"),
        ("ab+c-d==", "base64: mixes the standard ('+', '/') and URL-safe ('-', '_') alphabets"),
        ("eyJhI", "base64: 5 characters cannot be base64 (one too many or three missing: truncated?)"),
        ("eyJhIjoxfQ=", "base64: padding is wrong: 11 characters with 1 '=' is not a multiple of 4"),
        (base64.b64encode(b"[1,2]").decode(), "json: top-level value is an array, expected an object"),
        (base64.b64encode(b'{"a":1').decode(), "json: Expecting ',' delimiter at line 1 column 7 (char 6)"),
        (base64.b64encode(b'{"a":NaN}').decode(), "json: NaN is not JSON"),
        (base64.b64encode(b"not json").decode(), "json: Expecting value at line 1 column 1 (char 0)"),
    ],
)
def test_bad_input_says_exactly_what_failed(raw, problem):
    result = decode_payload(raw)
    assert result.payload is None
    assert result.problems == [problem]


def test_ambiguous_bytes_read_as_utf8_with_the_latin1_reading_noted():
    raw = btoa_json({"projectId": "Ã©"})  # btoa: bytes C3 A9, which are valid UTF-8 for "é"
    result = decode_payload(raw)
    assert result.encoding == "utf-8"
    assert result.payload == {"projectId": "é"}
    assert result.notes == ['text: read as UTF-8 (Node\'s Buffer); as Latin-1 (a browser\'s btoa) '
                            'it would read "{\\"projectId\\":\\"Ã©\\"}"']


def test_offsets_after_percent_decoding_say_so():
    result = decode_payload("eyJh%20bGc")
    assert result.problems == ["base64: illegal character ' ' at offset 4 after percent-decoding "
                               "(a '+' turned into a space by form decoding?)"]
    assert result.base64_variant is None


def test_control_character_is_named_by_code_point():
    result = decode_payload("eyJh\x07IjoxfQ==")
    assert result.problems == ["base64: illegal character U+0007 at offset 4"]


def test_raw_query_values_keeps_everything_verbatim():
    assert raw_query_values("a=1&payload=ab+c/d==&payload=x%2B", "payload") == ["ab+c/d==", "x%2B"]
    assert raw_query_values("payload", "payload") == [""]
    assert raw_query_values("", "payload") == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
objects = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


@settings(max_examples=300, deadline=None)
@given(objects)
def test_any_object_round_trips_through_the_buffer_path(obj):
    result = decode_payload(buffer_json(obj))
    assert result.problems == []
    assert result.payload == json.loads(js_stringify(obj))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=10),
                       st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=20), max_size=6))
def test_any_latin1_object_round_trips_through_btoa(obj):
    raw = btoa_json(obj)
    data = base64.b64decode(raw)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        # Latin-1 bytes that happen to be valid UTF-8 (e.g. "Ã©") are read as
        # UTF-8, with a note giving the Latin-1 reading: checked below.
        assume(data.isascii())
    result = decode_payload(raw)
    assert result.problems == []
    assert result.payload == obj


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_decoder_never_raises_and_always_explains(raw):
    result = decode_payload(raw)
    assert (result.payload is None) == bool(result.problems)
    assert all(isinstance(p, str) and "\n" not in p for p in result.problems)

"""The Apprise credentials file: its secrets masked before Apprise reads it, in both of its
formats; a channel's URLs, each its own outbox channel under a stable name without secrets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from monitor import logs
from monitor.delivery.chat import (
    ChatTransport,
    NoServices,
    chat_channels,
    credential_urls,
    load_services,
    url_key,
)
from monitor.delivery.worker import DeliveryError


@pytest.fixture
def debug_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    logs.configure("debug", "stderr")  # Apprise's own debug lines included
    capsys.readouterr()
    yield capsys
    logs.configure("info", "stderr")


# Each case has secrets of its own: a secret registered by another test would mask it anyway.
BROKEN = {
    # Apprise gives up on the whole file and logs the line it cannot parse, as written.
    "apprise.txt": (
        (
            "desk=json://alice:Txt-Pa55w0rd-41@127.0.0.1:9/hook\n"
            "desk!=gotify://gotify.example.com/TxtT0kenAbCdEfGh\n"
        ),
        ("Txt-Pa55w0rd-41", "TxtT0kenAbCdEfGh"),
    ),
    # PyYAML's error, which Apprise logs at debug level, quotes the lines around the fault.
    "apprise.yml": (
        (
            "urls:\n"
            "  - json://alice:Yml-Pa55w0rd-42@127.0.0.1:9/hook:\n"
            "     tag: desk\n"
            "   - gotify://gotify.example.com/YmlT0kenAbCdEfGhIj\n"
        ),
        ("Yml-Pa55w0rd-42", "YmlT0kenAbCdEfGhIj"),
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_secrets_are_masked_before_apprise_reads_the_file(
    tmp_path: Path, debug_logs: pytest.CaptureFixture[str], name: str
) -> None:
    content, secrets = BROKEN[name]
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match="no valid Apprise URL"):
        load_services(path)
    err = debug_logs.readouterr().err
    assert '"logger": "apprise"' in err  # Apprise did log about the file
    assert logs.MASK in err
    for secret in secrets:
        assert secret not in err


GOOD = {
    "apprise.txt": (
        (
            "# phone and desk\n"
            "phone=json://bob:Txt-G00d-Pa55-51@127.0.0.1:9/hook\n"
            "desk, phone = gotify://gotify.example.com/TxtG00dT0kenAbCdEf\n"
        ),
        ("Txt-G00d-Pa55-51", "TxtG00dT0kenAbCdEf"),
    ),
    "apprise.yml": (
        (
            "version: 1\n"
            "urls:\n"
            '  - "json://bob:Yml-G00d-Pa55-52@127.0.0.1:9/hook":\n'
            "      tag: phone\n"
            "  - ntfy://ntfy.example.com/alerts:\n"
            "      - tag: desk, phone\n"
            "        token: YmlG00dT0kenAbCdEf\n"
        ),
        ("Yml-G00d-Pa55-52", "YmlG00dT0kenAbCdEf"),
    ),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_good_file_loads_without_a_secret_in_the_logs(
    tmp_path: Path, debug_logs: pytest.CaptureFixture[str], name: str
) -> None:
    content, secrets = GOOD[name]
    path = tmp_path / name
    path.write_text(content)
    services = load_services(path)
    assert len(services) == 2
    # A later line quoting a URL whole (a third-party error message, say) is masked too.
    for server in services:
        structlog.get_logger("test").warning("send_failed", url=str(server.url(privacy=False)))
    err = debug_logs.readouterr().err
    assert "Loaded URL" in err
    assert err.count("send_failed") == 2
    for secret in secrets:
        assert secret not in err


def test_urls_are_read_from_both_formats() -> None:
    text = "a=json://u:p@h/x\n# c=json://commented@h\nb, c = tgram://123:ABC/456\n"
    assert credential_urls(text) == [
        "json://u:p@h/x",
        "json://commented@h",  # masked too: harmless
        "tgram://123:ABC/456",
    ]
    yaml = (
        "urls:\n  - json://u:p@h/x:\n      tag: a\n  - 'pover://user@token'\n"
        '  - "ntfy://t@h/topic?priority=high"\n'
    )
    assert credential_urls(yaml) == [
        "json://u:p@h/x",
        "pover://user@token",
        "ntfy://t@h/topic?priority=high",
    ]


def test_url_keys_are_stable_and_carry_no_secret() -> None:
    url = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345"
    key = url_key(url)
    assert key == url_key(url)  # the same at every start
    schema, digest = key.split("-")
    assert schema == "tgram"
    assert len(digest) == 8
    assert int(digest, 16) >= 0
    assert "AAHdq" not in key
    assert "123456789" not in key
    assert url_key(url + "0") != key


def write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "apprise.txt"
    path.write_text(content)
    return path


def test_each_url_of_a_channel_is_its_own_outbox_channel(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "desk=json://127.0.0.1:9/a\n"
        "desk,phone=json://127.0.0.1:9/b\n"
        "desk=json://127.0.0.1:9/a\n"  # the same URL twice: sent to once
        "ops=json://127.0.0.1:9/c\n",
    )
    services = load_services(path)
    desk = chat_channels("desk", services, ["desk"], timeout=5.0, credentials=path)
    assert [name for name, _t in desk] == [
        f"chat:desk/{url_key('json://127.0.0.1:9/a')}",
        f"chat:desk/{url_key('json://127.0.0.1:9/b')}",
    ]
    # The name comes from the URL as Apprise writes it: the same at every start.
    again = chat_channels("desk", load_services(path), ["desk"], timeout=5.0, credentials=path)
    assert [n for n, _t in again] == [n for n, _t in desk]
    assert all(isinstance(t, ChatTransport) and t.timeout == 5.0 for _n, t in desk)
    # One URL: the channel keeps its plain name.
    (phone,) = chat_channels("phone", services, ["phone"], credentials=path)
    assert phone[0] == "chat:phone"
    # No tags: every URL.
    assert len(chat_channels("all", services, [], credentials=path)) == 3


def test_a_channel_whose_tags_match_no_url_keeps_its_messages(tmp_path: Path) -> None:
    path = write(tmp_path, "desk=json://127.0.0.1:9/a\n")
    ((name, transport),) = chat_channels("pager", load_services(path), ["pager"], credentials=path)
    assert name == "chat:pager"
    assert isinstance(transport, NoServices)
    with pytest.raises(DeliveryError, match=r"no URL in .*apprise.txt carries .*'pager'"):
        asyncio.run(transport.send([], "g"))


def test_apprise_socket_timeouts_are_capped_by_the_send_timeout(tmp_path: Path) -> None:
    path = write(tmp_path, "desk=json://127.0.0.1:9/a\nops=json://127.0.0.1:9/b?rto=1&cto=1\n")
    services = load_services(path)
    (_n, quick), (_m, slow) = (
        chat_channels("desk", services, ["desk"], timeout=t, credentials=path)[0]
        for t in (0.5, 60.0)
    )
    assert isinstance(quick, ChatTransport)
    assert isinstance(slow, ChatTransport)
    sends = [next(iter(t._services)) for t in (quick, slow)]
    assert [(s.socket_connect_timeout, s.socket_read_timeout) for s in sends] == [
        (1.5, 1.5),  # capped at the timeout + 1 s, so a silent host's thread ends soon after
        (4.0, 4.0),  # Apprise's own default, shorter than the timeout
    ]
    (_o, given) = chat_channels("ops", services, ["ops"], timeout=0.5, credentials=path)[0]
    assert isinstance(given, ChatTransport)
    sent = next(iter(given._services))
    assert (sent.socket_connect_timeout, sent.socket_read_timeout) == (1.0, 1.0)  # the URL's
    # The loaded service itself is untouched: another channel may use it with another timeout.
    assert {(s.socket_connect_timeout, s.socket_read_timeout) for s in services} == {
        (4.0, 4.0),
        (1.0, 1.0),
    }
